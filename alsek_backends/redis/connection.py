"""Building redis-py clients: from a URL, with a retry policy, and again in a
child process from a recipe that holds connection parameters, never a socket.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.retry import Retry

from alsek_core.errors import AlsekError, ConfigError
from alsek_core.lazy import LazyClient, resolve
from alsek_core.redact import redact_url

Client = redis.Redis | RedisCluster
CLUSTER_SCHEME = "redis+cluster"
SCHEMES = ("redis", "rediss", "unix", CLUSTER_SCHEME)
DEFAULT_URL = "redis://localhost:6379/0"
#: Connections one client may hold at once. redis-py caps a pool at 100 and
#: then fails commands ("Too many connections"), but a pool of many threads
#: holds one per waiting claim plus one per command in flight; so allow what
#: the server accepts by default (maxclients). ``?max_connections=`` in the
#: URL still wins.
MAX_CONNECTIONS = 10_000

#: What a client needs to be rebuilt elsewhere; anything else in redis-py's
#: connection kwargs (callbacks, handlers, our retry object) is process-local.
_PORTABLE = frozenset(
    {
        "host",
        "port",
        "db",
        "username",
        "password",
        "path",
        "client_name",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "max_connections",
    }
)


class RedisUnavailableError(AlsekError, ConnectionError):
    """Redis stayed unreachable through every retry. A builtin ConnectionError,
    so callers that ride out outages of any backend can catch it generically."""


def retry_policy() -> Retry:
    """Ride out a dropped connection or a restarting server: up to 8 retries
    over about 4 s, jittered so that many workers do not reconnect in lockstep.
    redis-py retries both the command and the reconnect with it."""
    return Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), retries=8)


@dataclass(frozen=True)
class ClientRecipe:
    """A picklable description of a client: a URL, or the portable connection
    parameters of a client the user built (plus its nodes for a cluster)."""

    url: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    connection_class: type | None = None
    nodes: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_url(cls, url: str) -> ClientRecipe:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in SCHEMES:
            raise ConfigError(
                f"not a Redis URL: {redact_url(url)!r}; expected one of {', '.join(SCHEMES)}://"
            )
        try:
            _parse(url)
        except ValueError as exc:
            raise ConfigError(f"malformed Redis URL {redact_url(url)!r}: {exc}") from exc
        return cls(url=url)

    @classmethod
    def from_client(cls, client: Client) -> ClientRecipe:
        if isinstance(client, RedisCluster):
            manager = client.nodes_manager
            nodes = tuple((n.host, n.port) for n in manager.startup_nodes.values())
            kwargs = {
                k: v
                for k, v in manager.connection_kwargs.items()
                if k in _PORTABLE and k not in ("host", "port", "db")
            }
            return cls(kwargs=kwargs, nodes=nodes)
        pool = client.connection_pool
        kwargs = {
            k: v
            for k, v in pool.connection_kwargs.items()
            if k in _PORTABLE or k.startswith("ssl_")
        }
        kwargs["max_connections"] = pool.max_connections
        return cls(kwargs=kwargs, connection_class=pool.connection_class)

    @property
    def cluster(self) -> bool:
        return bool(self.nodes) or (self.url or "").lower().startswith(CLUSTER_SCHEME + ":")

    def build(self) -> Client:
        """A client that retries with backoff; no connection is opened yet
        (except for a cluster, whose client must learn the slot map)."""
        if self.cluster:
            try:
                if self.url is not None:
                    return RedisCluster.from_url(
                        _plain(self.url), retry=retry_policy(), max_connections=MAX_CONNECTIONS
                    )
                nodes = [ClusterNode(host, port) for host, port in self.nodes]  # type: ignore[no-untyped-call]
                return RedisCluster(startup_nodes=nodes, retry=retry_policy(), **self.kwargs)
            except redis.exceptions.RedisClusterException as exc:
                raise RedisUnavailableError(f"cannot reach Redis at {self.where}: {exc}") from exc
        if self.url is not None:
            return redis.Redis.from_url(
                self.url, retry=retry_policy(), max_connections=MAX_CONNECTIONS
            )
        pool = redis.ConnectionPool(
            connection_class=self.connection_class or redis.Connection,
            retry=retry_policy(),
            **self.kwargs,
        )
        return redis.Redis(connection_pool=pool)

    @property
    def where(self) -> str:
        """Where the server is, for error messages (never the password)."""
        if self.nodes:
            return "cluster " + ", ".join(f"{host}:{port}" for host, port in self.nodes)
        if self.url is not None:
            parsed = _parse(self.url)
            if self.cluster:  # a cluster has one database only
                return f"cluster {parsed.get('host', 'localhost')}:{parsed.get('port', 6379)}"
            return describe(parsed)
        return describe(self.kwargs)


def describe(kwargs: dict[str, Any]) -> str:
    if kwargs.get("path"):
        return f"unix:{kwargs['path']} db {kwargs.get('db', 0)}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)} db {kwargs.get('db', 0)}"


def where(client: Client) -> str:
    return ClientRecipe.from_client(client).where


def check_client(client: Any) -> Client:
    """Refuse what cannot hold our bytes: payloads are serializer output, and a
    client decoding replies to str would mangle them."""
    if not isinstance(client, (redis.Redis, RedisCluster)):
        raise ConfigError(
            f"expected a redis.Redis or redis.RedisCluster client, got {type(client).__name__}"
        )
    if client.get_encoder().decode_responses:
        raise ConfigError(
            "the Redis client decodes responses (decode_responses=True), which would turn "
            "payload bytes into str; pass a client built with decode_responses=False"
        )
    return client


def _plain(url: str) -> str:
    """redis-py's spelling of a cluster URL: ``redis+cluster://`` becomes ``redis://``."""
    if url.lower().startswith(CLUSTER_SCHEME + ":"):
        return "redis:" + url[len(CLUSTER_SCHEME) + 1 :]
    return url


def _parse(url: str) -> dict[str, Any]:
    return cast(dict[str, Any], parse_url(_plain(url)))  # type: ignore[no-untyped-call]


F = TypeVar("F", bound=Callable[..., Any])


def translated(method: F) -> F:
    """Turn redis-py's connection failures (raised once its retries are spent)
    into a RedisUnavailableError that says which server could not be reached."""

    def error(self: Any, exc: Exception) -> RedisUnavailableError:
        return RedisUnavailableError(f"cannot reach Redis at {self.where}: {exc}")

    unreachable = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from method(self, *args, **kwargs)
            except unreachable as exc:
                raise error(self, exc) from exc

        return cast(F, generator)

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except unreachable as exc:
            raise error(self, exc) from exc

    return cast(F, wrapper)


class RedisConnection:
    """The one client a backend's key-value and queue parts share: built on
    first use from a URL (or a LazyClient), or the caller's own. Pickled as
    its recipe, never a socket, so a child process builds its own client."""

    def __init__(self, conn: str | Client | LazyClient | None = None) -> None:
        self._recipe: ClientRecipe | None = None
        if conn is None or isinstance(conn, str):
            self._recipe = ClientRecipe.from_url(conn or DEFAULT_URL)
            conn = LazyClient(self._recipe.build)
        elif isinstance(conn, (redis.Redis, RedisCluster)) and conn.get_encoder().decode_responses:
            # Alsek asks for a decoding client, but payloads are bytes: talk
            # to the same server through a non-decoding client of our own.
            self._recipe = ClientRecipe.from_client(conn)
            conn = LazyClient(self._recipe.build)
        elif not isinstance(conn, LazyClient):
            conn = check_client(conn)
        self._conn: Client | LazyClient = conn

    @property
    def client(self) -> Client:
        """The live client (a LazyClient is evaluated on first use)."""
        if isinstance(self._conn, LazyClient):
            self._conn = check_client(resolve(self._conn))
        return self._conn

    @property
    def where(self) -> str:
        if self._recipe is not None:
            return self._recipe.where
        if isinstance(self._conn, LazyClient):
            return "(a client not built yet)"
        return where(self._conn)

    def close(self) -> None:
        """Drop a client built from a URL; the next use builds another. A
        client the caller passed in stays theirs to close."""
        if self._recipe is not None and not isinstance(self._conn, LazyClient):
            self._conn.close()
            self._conn = LazyClient(self._recipe.build)

    def __getstate__(self) -> dict[str, Any]:
        return {"recipe": self._recipe or ClientRecipe.from_client(self.client)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._recipe = state["recipe"]
        self._conn = LazyClient(state["recipe"].build)
