"""How the core learns about backends and serializers: pluggy, project ``alsek``.

A plugin is any module registered under the ``alsek`` entry-point group (the
built-ins are registered exactly the same way) that implements one or both
hooks of :class:`Hookspecs`, marked with :data:`hookimpl`::

    from alsek_core.plugins import BackendSpec, hookimpl

    @hookimpl
    def alsek_register_backends(register):
        register.backend(BackendSpec("mine", ("mine",), factory=make_backend))

Each plugin is loaded and asked on its own, so one that fails to import, raises,
or claims a scheme someone else has is reported by name and hides nothing else.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from alsek_core.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from alsek_core.ports import Backend, Serializer

PROJECT = "alsek"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class BackendSpec:
    """A backend a plugin offers: ``factory(url, **options)`` builds it, where
    options are ``namespace`` and ``serializer`` plus the caller's own.

    ``test_url(scratch_dir)`` gives the URL of a throwaway instance, so that the
    shared contract suite (``alsek_core.testing.contract.registry``) covers the
    backend just because it is registered.
    """

    name: str
    schemes: tuple[str, ...]
    factory: Callable[..., Backend]
    description: str = ""
    test_url: Callable[[str], str] | None = None


@dataclass(frozen=True)
class SerializerSpec:
    name: str
    factory: Callable[[], Serializer]
    description: str = ""


@dataclass(frozen=True)
class Origin:
    """Which plugin, from which distribution, registered something."""

    plugin: str
    distribution: str = "(not installed)"
    version: str = ""

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"plugin {self.plugin!r} ({self.distribution}{version})"


class Registry:
    """What hooks write into; it remembers who registered what."""

    def __init__(self) -> None:
        self.backends: dict[str, tuple[BackendSpec, Origin]] = {}
        self.schemes: dict[str, tuple[BackendSpec, Origin]] = {}
        self.serializers: dict[str, tuple[SerializerSpec, Origin]] = {}
        self.errors: list[PluginError] = []
        self.conflicts: dict[str, list[Origin]] = {}
        self.origin = Origin("?")

    def backend(self, spec: BackendSpec) -> None:
        if not spec.schemes:
            raise PluginError(f"{self.origin}: backend {spec.name!r} names no URL scheme")
        self.backends[spec.name] = (spec, self.origin)
        for scheme in spec.schemes:
            taken = self.schemes.get(scheme)
            if taken is not None and taken[1] != self.origin:
                self.conflicts.setdefault(scheme, [taken[1]]).append(self.origin)
                self.errors.append(
                    PluginError(
                        f"{self.origin}: URL scheme {scheme!r} is already taken by {taken[1]}"
                    )
                )
                continue
            self.schemes[scheme] = (spec, self.origin)

    def serializer(self, spec: SerializerSpec) -> None:
        taken = self.serializers.get(spec.name)
        if taken is not None and taken[1] != self.origin:
            self.errors.append(
                PluginError(
                    f"{self.origin}: serializer {spec.name!r} is already taken by {taken[1]}"
                )
            )
            return
        self.serializers[spec.name] = (spec, self.origin)


class Hookspecs:
    @hookspec
    def alsek_register_backends(self, register: Registry) -> None:
        """Register backends with ``register.backend(BackendSpec(...))``."""

    @hookspec
    def alsek_register_serializers(self, register: Registry) -> None:
        """Register serializers with ``register.serializer(SerializerSpec(...))``."""

    @hookspec
    def alsek_add_commands(self, cli: Any) -> None:
        """Add click commands or groups to the ``alsek`` CLI (``cli`` is a click.Group),
        e.g. ``alsek db`` from the PostgreSQL adapter."""


@dataclass
class PluginHost:
    """The one place plugins are loaded and asked; built once per process."""

    manager: pluggy.PluginManager = field(default_factory=lambda: pluggy.PluginManager(PROJECT))
    registry: Registry = field(default_factory=Registry)
    origins: dict[str, Origin] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.manager.add_hookspecs(Hookspecs)

    def load_entry_points(self) -> None:
        for entry_point in importlib.metadata.entry_points(group=PROJECT):
            dist = entry_point.dist
            origin = Origin(
                entry_point.name,
                dist.metadata["Name"] if dist else "(unknown)",
                dist.version if dist else "",
            )
            try:
                self.register(entry_point.load(), origin)
            except Exception as exc:
                self.registry.errors.append(PluginError(f"{origin}: failed to load: {exc!r}"))

    def register(self, plugin: object, origin: Origin | str) -> None:
        """Register a plugin object (module or instance) and ask its hooks at once."""
        if isinstance(origin, str):
            origin = Origin(origin)
        if self.manager.has_plugin(origin.plugin):
            raise PluginError(f"{origin}: a plugin of that name is already registered")
        try:
            self.manager.register(plugin, name=origin.plugin)
            self.manager.check_pending()  # a hook name we do not define is a typo
        except Exception as exc:
            if self.manager.has_plugin(origin.plugin):
                self.manager.unregister(name=origin.plugin)
            raise PluginError(f"{origin}: invalid plugin: {exc}") from exc
        self.origins[origin.plugin] = origin
        hooks = self.manager.hook
        for caller in (hooks.alsek_register_backends, hooks.alsek_register_serializers):
            for impl in caller.get_hookimpls():
                if impl.plugin_name != origin.plugin:
                    continue
                self.registry.origin = origin
                try:
                    impl.function(register=self.registry)
                except Exception as exc:
                    self.registry.errors.append(
                        PluginError(f"{origin}: {caller.name} failed: {exc!r}")
                    )

    def unregister(self, name: str) -> None:
        """Forget a plugin and all it registered (for tests and reloading)."""
        self.manager.unregister(name=name)
        origin = self.origins.pop(name)
        reg = self.registry
        for table in (reg.backends, reg.schemes, reg.serializers):
            for key in [k for k, (_, o) in table.items() if o == origin]:
                del table[key]

    def backend_spec(self, scheme: str) -> BackendSpec:
        if scheme in self.registry.conflicts:
            who = " and ".join(str(o) for o in self.registry.conflicts[scheme])
            raise PluginError(f"URL scheme {scheme!r} is claimed by {who}; uninstall one of them")
        found = self.registry.schemes.get(scheme)
        if found is None:
            raise ConfigError(
                f"no backend for URL scheme {scheme!r}; known schemes: {', '.join(self.known_schemes())}"
                + self.error_hint()
            )
        return found[0]

    def known_schemes(self) -> list[str]:
        return sorted(self.registry.schemes)

    def serializer(self, name: str) -> Serializer:
        found = self.registry.serializers.get(name)
        if found is None:
            known = ", ".join(sorted(self.registry.serializers)) or "none"
            raise ConfigError(
                f"unknown serializer {name!r}; known serializers: {known}" + self.error_hint()
            )
        return found[0].factory()

    def error_hint(self) -> str:
        if not self.registry.errors:
            return ""
        return " (plugin errors: " + "; ".join(str(e) for e in self.registry.errors) + ")"


_host: PluginHost | None = None
_lock = threading.Lock()


def plugin_host() -> PluginHost:
    """The process-wide host, loading entry points on first use."""
    global _host
    with _lock:
        if _host is None:
            host = PluginHost()
            host.load_entry_points()
            _host = host
        return _host


def serializer_by_name(name: str) -> Serializer:
    return plugin_host().serializer(name)


def default_serializer() -> Serializer:
    from alsek_core.config import serializer_name

    return serializer_by_name(serializer_name())


def describe() -> list[dict[str, Any]]:
    """Every registered backend and serializer with where it came from (``alsek backends``)."""
    reg = plugin_host().registry
    rows: list[dict[str, Any]] = [
        {
            "kind": "backend",
            "name": spec.name,
            "schemes": list(spec.schemes),
            "origin": str(origin),
            "description": spec.description,
        }
        for spec, origin in reg.backends.values()
    ]
    rows += [
        {
            "kind": "serializer",
            "name": spec.name,
            "schemes": [],
            "origin": str(origin),
            "description": spec.description,
        }
        for spec, origin in reg.serializers.values()
    ]
    return rows
