"""The core and every plugin module import no driver: adapters load their
driver only when a backend is actually built."""

from __future__ import annotations

import subprocess
import sys

DRIVERS = ("redis", "psycopg", "psycopg_pool", "diskcache", "sqlalchemy")

PROBE = f"""
import importlib, importlib.util, pkgutil, sys
import alsek_core
for info in pkgutil.walk_packages(alsek_core.__path__, "alsek_core."):
    if ".testing" not in info.name:
        importlib.import_module(info.name)
import alsek_backends
for info in pkgutil.iter_modules(alsek_backends.__path__, "alsek_backends."):
    if importlib.util.find_spec(info.name + ".plugin"):
        importlib.import_module(info.name + ".plugin")
importlib.import_module("alsek_serializers.plugin")
from alsek_core.plugins import plugin_host
plugin_host()
print(",".join(d for d in {DRIVERS!r} if d in sys.modules))
"""


def test_core_and_plugins_import_no_driver() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"drivers imported: {out.stdout.strip()}"
