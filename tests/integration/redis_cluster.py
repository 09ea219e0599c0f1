"""A real three-master Redis Cluster on 127.0.0.1:7000-7002, for any test.

Use it from a fixture::

    @pytest.fixture(scope="module")
    def cluster_url() -> Iterator[str]:
        with running_cluster() as url:
            yield url

``ALSEK_TEST_REDIS_CLUSTER_URL`` points at a cluster someone else runs. A
healthy cluster already answering on the first port is used as it is and left
running (tests keep apart by namespace); otherwise three ``redis-server``
processes are started in a temporary directory and stopped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from alsek_core.testing.contract.fixtures import unavailable

ENV_CLUSTER_URL = "ALSEK_TEST_REDIS_CLUSTER_URL"
PORTS = (7000, 7001, 7002)


def _cli(port: int, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cluster_ok(port: int) -> bool:
    try:
        return "cluster_state:ok" in _cli(port, "cluster", "info", timeout=2).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_cluster(ports: tuple[int, ...] = PORTS) -> Iterator[str]:
    """Yield a ``redis+cluster://`` URL of a working cluster."""
    if os.environ.get(ENV_CLUSTER_URL):
        yield os.environ[ENV_CLUSTER_URL]
        return
    url = f"redis+cluster://127.0.0.1:{ports[0]}"
    if cluster_ok(ports[0]):
        yield url
        return
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        unavailable("redis-server and redis-cli are needed to start a Redis Cluster")
    root = Path(tempfile.mkdtemp(prefix="alsek-redis-cluster-"))
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            folder = root / str(port)
            folder.mkdir()
            servers.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(folder),
                        "--logfile",
                        str(folder / "redis.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            _wait(
                lambda p=port: _cli(p, "ping", timeout=2).stdout.strip() == "PONG",
                f"redis-server on port {port}",
            )
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed: {created.stdout}{created.stderr}"
            )
        for port in ports:
            _wait(lambda p=port: cluster_ok(p), f"cluster_state:ok on port {port}")
        yield url
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(root, ignore_errors=True)
