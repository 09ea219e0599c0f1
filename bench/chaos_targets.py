"""The backends the chaos soak runs on, each in a place of its own that it
removes at the end, with the disruptions its server allows.

* sqlite: a directory in the soak's temp dir; no server, no connections to kill.
* redis: a private ``redis-server`` on a free port, persisting every write
  (``--appendonly yes --appendfsync always``) so that a restart is a restart
  and not a wipe; the server is SIGKILLed and started again on the same port.
* postgres: a database of the soak's own on the shared server. Killing
  connections terminates only that database's backends. Restarting the
  cluster stops everyone's work, so it happens only with ``--restart-server``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

POSTGRES_ADMIN_URL = os.environ.get(
    "ALSEK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RESTART_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Target:
    """A backend for one soak: its URL and what can be done to its server."""

    name = ""
    url = ""

    def can_restart(self) -> bool:
        return False

    def can_kill_connections(self) -> bool:
        return False

    def restart_server(self) -> str:
        raise NotImplementedError

    def kill_connections(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Remove everything this target made."""


class SqliteTarget(Target):
    name = "sqlite"

    def __init__(self, scratch: Path, namespace: str) -> None:
        self.url = f"sqlite:///{scratch / 'store'}?namespace={namespace}"


class RedisTarget(Target):
    name = "redis"

    def __init__(self, scratch: Path, namespace: str) -> None:
        import redis

        self.dir = scratch / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.log = (scratch / "redis.log").open("ab")
        self._start()
        self.admin = redis.Redis(port=self.port, socket_timeout=10)
        self.url = f"redis://127.0.0.1:{self.port}/0?namespace={namespace}"

    def _start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"]
        self.server = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private redis-server on port {self.port} did not start "
                                   f"(see {self.dir.parent / 'redis.log'})")
            time.sleep(0.05)

    def _stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGKILL)
            self.server.wait()

    def can_restart(self) -> bool:
        return True

    def can_kill_connections(self) -> bool:
        return True

    def restart_server(self) -> str:
        self._stop()
        down = time.monotonic()
        time.sleep(0.2)
        self._start()
        return f"redis-server SIGKILLed and back after {time.monotonic() - down:.2f}s"

    def kill_connections(self) -> str:
        killed = self.admin.execute_command("CLIENT KILL TYPE normal")  # type: ignore[no-untyped-call]
        return f"CLIENT KILL TYPE normal: {killed} connection(s)"

    def close(self) -> None:
        self.admin.close()
        self._stop()
        self.log.close()


class PostgresTarget(Target):
    name = "postgres"

    def __init__(self, scratch: Path, namespace: str, restart: bool) -> None:
        import psycopg

        self.restart = restart
        self.database = f"chaos_{uuid.uuid4().hex[:10]}"
        self.admin: Any = psycopg.Connection.connect(POSTGRES_ADMIN_URL, autocommit=True)
        self.admin.execute(f"CREATE DATABASE {self.database}")
        base = POSTGRES_ADMIN_URL.split("?", 1)[0].rsplit("/", 1)[0]
        self.url = f"{base}/{self.database}?namespace={namespace}"
        subprocess.run([sys.executable, "-m", "alsek_cli", "db", "init", "--backend", self.url],
                       check=True, capture_output=True, timeout=120)

    def _admin(self) -> Any:
        """The admin connection, reopened when a cluster restart has closed it."""
        import psycopg

        try:
            self.admin.execute("SELECT 1")
            return self.admin
        except psycopg.Error:
            self.admin.close()
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:
            try:
                self.admin = psycopg.Connection.connect(POSTGRES_ADMIN_URL, autocommit=True)
                return self.admin
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def can_restart(self) -> bool:
        return self.restart

    def can_kill_connections(self) -> bool:
        return True

    def restart_server(self) -> str:
        versions = sorted(os.listdir("/etc/postgresql"))
        cluster = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]
        began = time.monotonic()
        done = subprocess.run([*cluster, "restart"], capture_output=True, timeout=RESTART_TIMEOUT_S,
                              check=False)
        self._admin()
        return f"pg_ctlcluster restart exited {done.returncode} after {time.monotonic() - began:.2f}s"

    def kill_connections(self) -> str:
        rows = self._admin().execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (self.database,)).fetchall()
        return f"pg_terminate_backend: {sum(1 for (ok,) in rows if ok)} connection(s) of {self.database}"

    def close(self) -> None:
        try:
            self._admin().execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        except Exception as exc:
            print(f"could not drop database {self.database}: {exc}", file=sys.stderr)
        self.admin.close()


def make_target(name: str, scratch: Path, namespace: str, restart_server: bool) -> Target:
    if name == "sqlite":
        return SqliteTarget(scratch, namespace)
    if name == "redis":
        if not shutil.which("redis-server"):
            raise SystemExit("redis-server is not on PATH: the soak needs a private server to restart")
        return RedisTarget(scratch, namespace)
    return PostgresTarget(scratch, namespace, restart_server)
