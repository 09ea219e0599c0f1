"""The Lua scripts kept beside this package (queue.lua, delete_if.lua), each
read once and run by its SHA1."""

from __future__ import annotations

import hashlib
from importlib.resources import files
from typing import Any

from redis.exceptions import NoScriptError


class Script:
    """EVALSHA on one key, loading the script first when the server lacks it
    (scripts flushed, or a restarted server)."""

    def __init__(self, filename: str) -> None:
        self.text = files("alsek_backends.redis").joinpath(filename).read_text(encoding="utf-8")
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()

    def load(self, client: Any) -> None:
        client.script_load(self.text)

    def __call__(self, client: Any, key: str, *args: Any) -> Any:
        try:
            return client.evalsha(self.sha, 1, key, *args)
        except NoScriptError:
            client.script_load(self.text)
            return client.evalsha(self.sha, 1, key, *args)
