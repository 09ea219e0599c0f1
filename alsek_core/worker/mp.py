"""Which multiprocessing implementation the pools use.

``ALSEK_MULTIPROCESSING_BACKEND=torch`` swaps in ``torch.multiprocessing`` (it
shares tensors between processes through shared memory instead of pickling
them); anything else but the default is refused, so a typo is not silently
ignored.

Children are forked where the platform can: a forked child inherits the
task objects as they are, so tasks need not be importable by name (a task
defined in a test, in ``__main__``, or built at run time still runs).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from alsek_core.errors import ConfigError

ENV_MP_BACKEND = "ALSEK_MULTIPROCESSING_BACKEND"
BACKENDS = {"multiprocessing": "multiprocessing", "torch": "torch.multiprocessing"}


def multiprocessing_module() -> Any:
    """The module named by ``ALSEK_MULTIPROCESSING_BACKEND`` (stdlib by default)."""
    choice = (os.environ.get(ENV_MP_BACKEND) or "multiprocessing").strip().lower()
    if choice not in BACKENDS:
        raise ConfigError(
            f"{ENV_MP_BACKEND}={choice!r} is not supported; use one of: {', '.join(sorted(BACKENDS))}"
        )
    try:
        return importlib.import_module(BACKENDS[choice])
    except ImportError as exc:
        raise ConfigError(
            f"{ENV_MP_BACKEND}={choice} but {BACKENDS[choice]} cannot be imported ({exc}); "
            f"install torch or unset {ENV_MP_BACKEND}"
        ) from exc


def context() -> Any:
    """A multiprocessing context that forks where fork exists."""
    module = multiprocessing_module()
    method = "fork" if "fork" in module.get_all_start_methods() else None
    return module.get_context(method)
