"""Which backend and serializer to use.

Precedence, first found wins: an explicit argument, the CLI's ``--backend``,
the ``ALSEK_BACKEND_URL`` environment variable, ``[tool.alsek] backend`` in
the nearest pyproject.toml, then the embedded default (a DiskCache/SQLite
store in ``.alsek/`` under the working directory). The serializer follows the
same order through ``ALSEK_SERIALIZER`` and ``[tool.alsek] serializer``.

Two query parameters are ours on any URL and are taken off before the
adapter sees it: ``namespace`` and ``serializer``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from alsek_core.errors import ConfigError
from alsek_core.plugins import plugin_host, serializer_by_name

if TYPE_CHECKING:
    from alsek_core.ports import Backend

ENV_BACKEND = "ALSEK_BACKEND_URL"
ENV_SERIALIZER = "ALSEK_SERIALIZER"
DEFAULT_BACKEND_URL = "sqlite:///.alsek"
DEFAULT_SERIALIZER = "json"
OUR_PARAMS = ("namespace", "serializer")


def pyproject_settings(start: Path | None = None) -> dict[str, Any]:
    """``[tool.alsek]`` of the nearest pyproject.toml at or above ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{candidate}: not valid TOML: {exc}") from exc
            settings = data.get("tool", {}).get("alsek", {})
            return dict(settings) if isinstance(settings, dict) else {}
    return {}


def _first(*candidates: str | None, setting: str, env: str, default: str) -> str:
    for value in candidates:
        if value:
            return value
    return os.environ.get(env) or str(pyproject_settings().get(setting) or default)


def backend_url(explicit: str | None = None, cli: str | None = None) -> str:
    return _first(explicit, cli, setting="backend", env=ENV_BACKEND, default=DEFAULT_BACKEND_URL)


def serializer_name(explicit: str | None = None) -> str:
    return _first(explicit, setting="serializer", env=ENV_SERIALIZER, default=DEFAULT_SERIALIZER)


def split_url(url: str) -> tuple[str, str, dict[str, str]]:
    """(scheme, the URL without our parameters, our parameters)."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"malformed backend URL {url!r}: expected scheme://…; known schemes: "
            + ", ".join(plugin_host().known_schemes())
        )
    parts = urlsplit(url)
    if not parts.scheme:
        raise ConfigError(f"malformed backend URL {url!r}: no scheme")
    ours = dict(parse_qsl(parts.query, keep_blank_values=True))
    ours = {k: v for k, v in ours.items() if k in OUR_PARAMS}
    # Keep the adapter's own parameters exactly as written (libpq reads %20, not +).
    rest = "&".join(p for p in parts.query.split("&") if p and p.split("=", 1)[0] not in OUR_PARAMS)
    base = url.split("?", 1)[0]  # not urlunsplit: it turns sqlite://// into sqlite://
    return parts.scheme.lower(), f"{base}?{rest}" if rest else base, ours


def backend_from_url(url: str, **options: Any) -> Backend:
    """Build a backend from its URL through whichever plugin owns the scheme."""
    scheme, adapter_url, ours = split_url(url)
    spec = plugin_host().backend_spec(scheme)
    if "namespace" in ours:
        options.setdefault("namespace", ours["namespace"])
    if "serializer" in ours or "serializer" not in options:
        options["serializer"] = serializer_by_name(serializer_name(ours.get("serializer")))
    return spec.factory(adapter_url, **options)


def default_backend(cli: str | None = None) -> Backend:
    return backend_from_url(backend_url(cli=cli))
