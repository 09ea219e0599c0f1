"""Where each setting comes from, and saying so.

Precedence, first found wins: an explicit argument, the CLI's ``--backend``,
the environment (``ALSEK_BACKEND_URL``, ``ALSEK_SERIALIZER``,
``ALSEK_BLOCK_PLUGINS``), ``[tool.alsek]`` in the nearest pyproject.toml, then
the default. The default store is a DiskCache/SQLite directory ``.alsek``
next to that pyproject.toml (the project's root), or in the working directory
when there is none, always made absolute: a command run from a subfolder
finds the same store, and every header and error names the path it chose.

Nothing here knows about plugins, so the plugin host can read its own
settings (the block list) from here.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alsek_core.errors import ConfigError

ENV_BACKEND = "ALSEK_BACKEND_URL"
ENV_SERIALIZER = "ALSEK_SERIALIZER"
ENV_BLOCK_PLUGINS = "ALSEK_BLOCK_PLUGINS"
DEFAULT_STORE_DIR = ".alsek"
DEFAULT_SERIALIZER = "json"


@dataclass(frozen=True)
class Setting:
    """A value and the source that chose it, in words (for headers and errors)."""

    value: str
    source: str


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` (the working directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def pyproject_settings(start: Path | None = None) -> dict[str, Any]:
    """``[tool.alsek]`` of the nearest pyproject.toml at or above ``start``."""
    found = find_pyproject(start)
    if found is None:
        return {}
    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{found}: not valid TOML: {exc}") from exc
    settings = data.get("tool", {}).get("alsek", {})
    return dict(settings) if isinstance(settings, dict) else {}


def _resolve(explicit: str | None, cli: str | None, key: str, env: str) -> Setting | None:
    if explicit:
        return Setting(explicit, "the caller's argument")
    if cli:
        return Setting(cli, f"--{key}")
    if os.environ.get(env):
        return Setting(os.environ[env], f"${env}")
    value = pyproject_settings().get(key)
    if value:
        return Setting(str(value), f"[tool.alsek] {key} in {find_pyproject()}")
    return None


def default_store_url() -> Setting:
    """``sqlite:////abs/.alsek`` next to the project's pyproject.toml, else in the cwd."""
    project = find_pyproject()
    folder = project.parent if project is not None else Path.cwd().resolve()
    where = f"next to {project}" if project is not None else "in the working directory (no pyproject.toml found)"
    return Setting(f"sqlite:///{folder / DEFAULT_STORE_DIR}", f"the default: {DEFAULT_STORE_DIR} {where}")


def resolve_backend_url(explicit: str | None = None, cli: str | None = None) -> Setting:
    return _resolve(explicit, cli, "backend", ENV_BACKEND) or default_store_url()


def backend_url(explicit: str | None = None, cli: str | None = None) -> str:
    return resolve_backend_url(explicit, cli).value


def serializer_name(explicit: str | None = None) -> str:
    found = _resolve(explicit, None, "serializer", ENV_SERIALIZER)
    return found.value if found else DEFAULT_SERIALIZER


def blocked_plugins() -> frozenset[str]:
    """Plugin names never loaded: ``$ALSEK_BLOCK_PLUGINS`` (comma separated)
    and ``[tool.alsek] block_plugins`` (a list), together."""
    names = set(os.environ.get(ENV_BLOCK_PLUGINS, "").split(","))
    listed = pyproject_settings().get("block_plugins", [])
    if isinstance(listed, str) or not isinstance(listed, list):
        raise ConfigError(f"[tool.alsek] block_plugins must be a list of plugin names, not {listed!r}")
    names.update(str(name) for name in listed)
    return frozenset(name.strip() for name in names if name.strip())
