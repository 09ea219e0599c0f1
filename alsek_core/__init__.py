"""The domain of alsek: messages, tasks, the broker, consumers, status and
results, written against the ports in ``alsek_core.ports`` only. It imports
no adapter and no driver; adapters reach it through ``alsek_core.plugins``."""

from __future__ import annotations

__version__ = "0.1.0"
#: The name this project is installed under (``pip install alsek-pluggable[redis]``);
#: "alsek" on the package index is upstream Alsek.
DISTRIBUTION = "alsek-pluggable"
