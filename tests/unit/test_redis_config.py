"""Building the Redis backend needs no server: URLs and clients are checked
up front, and nothing connects until first use."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
import redis

from alsek_backends.redis.backend import RedisBackend
from alsek_backends.redis.connection import ClientRecipe
from alsek_core.config import backend_from_url
from alsek_core.errors import ConfigError
from alsek_core.plugins import plugin_host

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.mark.parametrize("scheme", ["redis", "rediss", "unix", "redis+cluster"])
def test_schemes_are_registered(scheme: str) -> None:
    assert plugin_host().backend_spec(scheme).name == "redis"


def test_urls_build_lazily() -> None:
    backend = backend_from_url(CLOSED + "?namespace=lazy")
    assert isinstance(backend, RedisBackend)
    assert backend.namespace == "lazy"
    cluster = RedisBackend("redis+cluster://127.0.0.1:1")
    assert "cluster 127.0.0.1:1" in repr(cluster)


def test_default_is_localhost_db_0() -> None:
    assert RedisBackend().where == "localhost:6379 db 0"


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://localhost:6379", "not a Redis URL"),
        ("redis://localhost:port/0", "malformed Redis URL"),
        ("redis://user:secret@localhost:port/0", "user:\\*\\*\\*@"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        RedisBackend(url)
    assert "secret" not in str(caught.value)


def test_a_decoding_client_lends_its_settings_to_a_bytes_client() -> None:
    """Alsek's reference builds RedisBackend on a decode_responses=True client."""
    theirs = redis.Redis(host="127.0.0.1", port=1, db=4, decode_responses=True)
    backend = RedisBackend(theirs)
    assert backend.where == "127.0.0.1:1 db 4"
    assert not backend.conn.get_encoder().decode_responses
    assert backend.conn is not theirs
    backend.close()
    theirs.close()


def test_something_else_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"expected a redis\.Redis"):
        RedisBackend(object())  # type: ignore[arg-type]


def test_pickling_carries_parameters_not_sockets() -> None:
    backend = RedisBackend("redis://user:pw@127.0.0.1:1/3", namespace="ns")
    copy = pickle.loads(pickle.dumps(backend))
    assert (copy.namespace, copy.where) == ("ns", "127.0.0.1:1 db 3")
    client = redis.Redis(host="127.0.0.1", port=1, db=2, password="pw", client_name="me")
    recipe = pickle.loads(pickle.dumps(RedisBackend(client))).connection._recipe
    assert recipe is not None
    rebuilt = recipe.build().connection_pool.connection_kwargs
    assert {k: rebuilt[k] for k in ("host", "port", "db", "password", "client_name")} == {
        "host": "127.0.0.1",
        "port": 1,
        "db": 2,
        "password": "pw",
        "client_name": "me",
    }


def test_unix_socket_recipe() -> None:
    client = redis.Redis(unix_socket_path="/tmp/redis.sock", db=4)
    recipe = ClientRecipe.from_client(client)
    assert recipe.where == "unix:/tmp/redis.sock db 4"
    assert recipe.build().connection_pool.connection_class is redis.UnixDomainSocketConnection


def test_loading_the_plugin_does_not_import_redis() -> None:
    code = "import alsek_core, alsek_backends.redis.plugin, sys; assert 'redis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
