"""Building the backend a URL names, through whichever plugin owns its scheme.

Where the URL comes from (argument, ``--backend``, environment, pyproject.toml,
default) is :mod:`alsek_core.settings`'s business; this module turns it into a
backend and says plainly what is wrong with it when it cannot: a malformed URL,
an unknown scheme, a driver not installed, a query parameter nobody knows. Each
is a :class:`ConfigError` (a mistake to fix), never mistaken for an outage.

Two query parameters are ours on any URL and are taken off before the
adapter sees it: ``namespace`` and ``serializer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from alsek_core.errors import ConfigError
from alsek_core.plugins import BackendSpec, plugin_host, serializer_by_name
from alsek_core.redact import redact_url
from alsek_core.settings import Setting, resolve_backend_url, serializer_name

if TYPE_CHECKING:
    from alsek_core.ports import Backend

OUR_PARAMS = ("namespace", "serializer")


class StoreMissingError(ConfigError):
    """A read-only command was pointed at a store that does not exist."""


def split_url(url: str) -> tuple[str, str, dict[str, str]]:
    """(scheme, the URL without our parameters, our parameters)."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"malformed backend URL {redact_url(url)!r}: expected scheme://…; known schemes: "
            + ", ".join(plugin_host().known_schemes())
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"malformed backend URL {redact_url(url)!r}: {exc}") from None
    if not parts.scheme:
        raise ConfigError(f"malformed backend URL {redact_url(url)!r}: no scheme")
    ours = dict(parse_qsl(parts.query, keep_blank_values=True))
    ours = {k: v for k, v in ours.items() if k in OUR_PARAMS}
    # Keep the adapter's own parameters exactly as written (libpq reads %20, not +).
    rest = "&".join(p for p in parts.query.split("&") if p and p.split("=", 1)[0] not in OUR_PARAMS)
    base = url.split("?", 1)[0]  # not urlunsplit: it turns sqlite://// into sqlite://
    return parts.scheme.lower(), f"{base}?{rest}" if rest else base, ours


def _check_params(spec: BackendSpec, adapter_url: str) -> None:
    if spec.url_params is None:
        return
    known = set(spec.url_params())
    query = urlsplit(adapter_url).query
    for item in query.split("&") if query else []:
        name = unquote(item.partition("=")[0])
        if name not in known:
            listed = ", ".join(sorted(known | set(OUR_PARAMS)))
            raise ConfigError(f"unknown {spec.name} URL parameter {name!r}; known parameters: {listed}")


def backend_spec(url: str) -> tuple[BackendSpec, str, dict[str, str]]:
    """The spec that owns ``url``, checked: its driver is installed and every
    query parameter is one it knows. Returns (spec, adapter URL, our parameters)."""
    scheme, adapter_url, ours = split_url(url)
    host = plugin_host()
    spec = host.backend_spec(scheme)
    host.check_driver(spec, host.backend_origin(spec))
    _check_params(spec, adapter_url)
    return spec, adapter_url, ours


def backend_from_url(url: str, **options: Any) -> Backend:
    """Build a backend from its URL through whichever plugin owns the scheme."""
    spec, adapter_url, ours = backend_spec(url)
    if "namespace" in ours:
        options.setdefault("namespace", ours["namespace"])
    if "serializer" in ours or "serializer" not in options:
        options["serializer"] = serializer_by_name(serializer_name(ours.get("serializer")))
    return spec.factory(adapter_url, **options)


def default_backend(cli: str | None = None) -> Backend:
    return backend_from_url(resolve_backend_url(cli=cli).value)


def existing_backend(setting: Setting) -> Backend:
    """The backend ``setting`` names, refusing to create a store that is not
    there (what read-only commands use: looking must not leave a mess)."""
    spec, adapter_url, ours = backend_spec(setting.value)
    serializer_by_name(serializer_name(ours.get("serializer")))  # a bad name is the first thing to fix
    if spec.store_exists is not None and not spec.store_exists(adapter_url):
        raise StoreMissingError(
            f"no store exists at {redact_url(setting.value)} (chosen by {setting.source}); "
            "nothing was created: pass --backend, set $ALSEK_BACKEND_URL, or run from your project"
        )
    return backend_from_url(setting.value)
