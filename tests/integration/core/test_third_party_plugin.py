"""A third-party backend, written as its author would: its own package and
distribution (a dist-info with an ``alsek`` entry point), five key-value
methods over files, and the exported contract suite opted into with
``pytest_plugins``. Nothing in this project names it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

BACKEND = '''
from __future__ import annotations

import json, os, time, urllib.parse
from alsek_core.backend import Backend
from alsek_core.errors import KeyExistsError


class FileBackend(Backend):
    """One file per name; nx through O_EXCL, so processes can share it."""

    def __init__(self, directory, **options):
        super().__init__(**options)
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def _path(self, name):
        return os.path.join(self.directory, urllib.parse.quote(self.full_name(name), safe=""))

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                expires, data = json.loads(f.read())
        except (FileNotFoundError, ValueError):
            return None
        if expires is not None and expires <= time.time():
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return None
        return data

    def exists(self, name):
        return self._read(self._path(name)) is not None

    def set(self, name, value, nx=False, ttl=None):
        data = self.serializer.dumps(value).decode("latin-1")
        record = json.dumps([None if ttl is None else time.time() + ttl / 1000, data]).encode()
        path = self._path(name)
        if nx:
            self._read(path)  # drops an expired file
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                raise KeyExistsError(name) from None
            with os.fdopen(fd, "wb") as f:
                f.write(record)
            return
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(record)
        os.replace(tmp, path)

    def get(self, name, default=None):
        data = self._read(self._path(name))
        return default if data is None else self.serializer.loads(data.encode("latin-1"))

    def delete(self, name, missing_ok=False):
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            if not missing_ok:
                raise KeyError(name) from None

    def scan(self, pattern=None):
        prefix = self.full_name("")
        for entry in os.listdir(self.directory):
            if entry.endswith(".tmp"):
                continue
            key = urllib.parse.unquote(entry)
            if key.startswith(prefix) and self.matches(self.short_name(key), pattern):
                if self._read(os.path.join(self.directory, entry)) is not None:
                    yield self.short_name(key)
'''

PLUGIN = """
from alsek_core.plugins import BackendSpec, hookimpl


def make(url, **options):
    from filekv.backend import FileBackend
    return FileBackend(url.split("://", 1)[1], **options)


@hookimpl
def alsek_register_backends(register):
    register.backend(BackendSpec("filekv", ("filekv",), make, "one file per key"))
"""

CONFTEST = 'pytest_plugins = ["alsek_core.testing.contract.fixtures"]\n'

CONTRACT_TEST = """
import functools

import pytest

from alsek_core.config import backend_from_url
from alsek_core.testing.contract import BackendContract


class TestFileKV(BackendContract):
    @pytest.fixture
    def backend_factory(self, contract_namespace, tmp_path):
        return functools.partial(backend_from_url, f"filekv://{tmp_path}/store", namespace=contract_namespace)
"""


def test_third_party_plugin_is_discovered_and_passes_the_contract(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "filekv").mkdir(parents=True)
    (site / "filekv" / "__init__.py").write_text("")
    (site / "filekv" / "backend.py").write_text(BACKEND)
    (site / "filekv" / "plugin.py").write_text(PLUGIN)
    dist = site / "alsek_filekv-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: alsek-filekv\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[alsek]\nfilekv = filekv.plugin\n")
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_filekv_contract.py").write_text(textwrap.dedent(CONTRACT_TEST))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }

    listing = subprocess.run(
        [sys.executable, "-c", "from alsek_core.plugins import describe; print(describe())"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "plugin 'filekv' (alsek-filekv 1.2.3)" in listing.stdout

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        capture_output=True,
        text=True,
        env=env,
        cwd=suite,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout and "failed" not in run.stdout
