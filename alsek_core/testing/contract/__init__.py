"""The one contract suite every backend must pass: ours and third parties'.

Opt in from a conftest.py, then bind a backend to the mixins::

    # conftest.py
    pytest_plugins = ["alsek_core.testing.contract.fixtures"]

    # test_my_backend.py
    import functools
    import pytest
    from alsek_core.testing.contract import BackendContract
    from my_package import MyBackend

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend_factory(self, contract_namespace):
            return functools.partial(MyBackend, namespace=contract_namespace)

``backend_factory`` must be picklable (a class or a functools.partial of
one) because the concurrency contract builds the backend again in child
processes. Or opt into ``alsek_core.testing.contract.registry`` instead, which
runs the suite against every registered backend that declares a ``test_url``.
"""

from __future__ import annotations

from alsek_core.testing.contract.chord import ChordJoinContract
from alsek_core.testing.contract.history import HistoryContract
from alsek_core.testing.contract.kv import KeyValueContract
from alsek_core.testing.contract.limits import LimitsContract
from alsek_core.testing.contract.outcomes import OutcomeReadContract
from alsek_core.testing.contract.pause import PauseContract
from alsek_core.testing.contract.queue import ConcurrencyContract, QueueContract
from alsek_core.testing.contract.revocation import RevocationContract
from alsek_core.testing.contract.serializer import SerializerContract
from alsek_core.testing.contract.settle import SettleContract
from alsek_core.testing.contract.unique import UniqueContract


class BackendContract(
    KeyValueContract,
    ChordJoinContract,
    SerializerContract,
    QueueContract,
    ConcurrencyContract,
    RevocationContract,
    OutcomeReadContract,
    SettleContract,
    UniqueContract,
    PauseContract,
    LimitsContract,
    HistoryContract,
):
    """Every contract at once."""


__all__ = [
    "BackendContract",
    "ChordJoinContract",
    "ConcurrencyContract",
    "HistoryContract",
    "KeyValueContract",
    "LimitsContract",
    "OutcomeReadContract",
    "PauseContract",
    "QueueContract",
    "RevocationContract",
    "SerializerContract",
    "SettleContract",
    "UniqueContract",
]
