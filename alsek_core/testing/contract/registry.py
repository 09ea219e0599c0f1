"""A pytest plugin that runs the contract suite against every registered
backend declaring a ``test_url``: a new adapter is covered by registering."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable

import pytest

from alsek_core.config import backend_from_url
from alsek_core.plugins import plugin_host
from alsek_core.ports import Backend

pytest_plugins = ["alsek_core.testing.contract.fixtures"]


def _targets() -> list[str]:
    specs = {spec.name: spec for spec, _ in plugin_host().registry.backends.values()}
    return sorted(name for name, spec in specs.items() if spec.test_url is not None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_factory" in metafunc.fixturenames and "registered_backend" in metafunc.fixturenames:
        metafunc.parametrize("registered_backend", _targets(), scope="session")


@pytest.fixture(scope="session")
def scratch_dir() -> str:
    return tempfile.mkdtemp(prefix="alsek-contract-")


@pytest.fixture
def backend_factory(
    registered_backend: str, scratch_dir: str, contract_namespace: str
) -> Callable[[], Backend]:
    spec = plugin_host().registry.backends[registered_backend][0]
    assert spec.test_url is not None
    return functools.partial(
        backend_from_url, spec.test_url(scratch_dir), namespace=contract_namespace
    )
