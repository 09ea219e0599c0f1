from __future__ import annotations

import sys

from alsek_core.plugins import Origin, plugin_host
from tests import five_method

# The five-method backend joins the registry as any plugin would, so every
# registry-driven suite (contract, tour) covers it too.
plugin_host().register(five_method, Origin("five-method", "alsek tests"))
assert "tests.five_method" in sys.modules

pytest_plugins = ["alsek_core.testing.contract.registry"]
