"""How the core learns about backends, serializers and CLI commands: pluggy,
project ``alsek``.

A plugin is any module registered under the ``alsek`` entry-point group (the
built-ins are registered exactly the same way, in this project's
pyproject.toml) that implements hooks of :class:`Hookspecs`, marked with
:data:`hookimpl`::

    from alsek_core.plugins import BackendSpec, hookimpl

    @hookimpl
    def alsek_register_backends(register):
        register.backend(BackendSpec("mine", ("mine",), factory=make_backend))

Each plugin is loaded and asked on its own, so one that fails to import, raises,
or claims a scheme someone else has is reported by name and hides nothing else.
A plugin named in ``$ALSEK_BLOCK_PLUGINS`` or ``[tool.alsek] block_plugins`` is
never imported at all (a broken or unwanted one, built-ins included).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from alsek_core.errors import ConfigError, PluginError
from alsek_core.settings import blocked_plugins, serializer_name

if TYPE_CHECKING:
    import click

    from alsek_core.middleware import Middleware
    from alsek_core.ports import Backend, Serializer

PROJECT = "alsek"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class MissingDriverError(ConfigError):
    """A backend whose driver (an optional dependency) is not installed."""


@dataclass(frozen=True)
class BackendSpec:
    """A backend a plugin offers: ``factory(url, **options)`` builds it, where
    options are ``namespace`` and ``serializer`` plus the caller's own.

    ``test_url(scratch_dir)`` gives the URL of a throwaway instance, so that the
    shared contract suite (``alsek_core.testing.contract.registry``) covers the
    backend just because it is registered.

    ``requires`` names the driver modules the factory imports and ``extra`` the
    optional-dependency group of the plugin's distribution that installs them:
    a missing driver is then one line saying what to install, before anything
    is built. ``url_params()`` lists the query parameters the backend accepts
    (asked only once the driver is known to be there); any other is a
    configuration mistake reported by name. ``store_exists(url)`` says, without
    creating anything, whether a store is there: read-only commands refuse to
    create one.
    """

    name: str
    schemes: tuple[str, ...]
    factory: Callable[..., Backend]
    description: str = ""
    test_url: Callable[[str], str] | None = None
    requires: tuple[str, ...] = ()
    extra: str = ""
    url_params: Callable[[], Collection[str]] | None = None
    store_exists: Callable[[str], bool] | None = None


@dataclass(frozen=True)
class SerializerSpec:
    name: str
    factory: Callable[[], Serializer]
    description: str = ""
    requires: tuple[str, ...] = ()
    extra: str = ""


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
        self.middlewares: list[tuple[Middleware, Origin]] = []
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

    def middleware(self, middleware: Middleware) -> None:
        self.middlewares.append((middleware, self.origin))


class Hookspecs:
    @hookspec
    def alsek_register_backends(self, register: Registry) -> None:
        """Offer backends: call ``register.backend(BackendSpec(...))`` once per backend.

        :param register: the host's :class:`Registry`; it records this plugin as the origin.
        """

    @hookspec
    def alsek_register_serializers(self, register: Registry) -> None:
        """Offer serializers: call ``register.serializer(SerializerSpec(...))``.

        :param register: the host's :class:`Registry`; it records this plugin as the origin.
        """

    @hookspec
    def alsek_register_middleware(self, register: Registry) -> None:
        """Offer middleware (:class:`alsek_core.middleware.Middleware`): call
        ``register.middleware(instance)``. Register only what works here (a
        tracing plugin whose library is missing registers nothing).

        :param register: the host's :class:`Registry`; it records this plugin as the origin.
        """

    @hookspec
    def alsek_add_commands(self, cli: click.Group) -> None:
        """Add click commands or groups to the ``alsek`` CLI, e.g. ``alsek db``
        from the PostgreSQL adapter.

        :param cli: the ``alsek`` :class:`click.Group`; call ``cli.add_command(...)``.
        """


def missing_modules(modules: Iterable[str]) -> list[str]:
    """Which of ``modules`` cannot be imported here (found without importing them)."""
    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


@dataclass
class PluginHost:
    """The one place plugins are loaded and asked; built once per process.

    Callers use its typed methods (:meth:`backend_spec`, :meth:`serializer`,
    :meth:`add_commands`, :meth:`describe`...), never pluggy itself.
    """

    manager: pluggy.PluginManager = field(default_factory=lambda: pluggy.PluginManager(PROJECT))
    registry: Registry = field(default_factory=Registry)
    origins: dict[str, Origin] = field(default_factory=dict)
    blocked: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.manager.add_hookspecs(Hookspecs)

    def load_entry_points(self) -> None:
        """Load every ``alsek`` entry point not blocked. None at all means the
        package's metadata is missing (a source tree never pip-installed), and
        nothing would work: that is one clear error, not an empty registry."""
        found = list(importlib.metadata.entry_points(group=PROJECT))
        if not found:
            raise PluginError(
                "no 'alsek' plugins are installed (no package metadata found): "
                "install the package, e.g. `pip install -e .` in the source tree"
            )
        seen: set[tuple[str, str]] = set()
        for entry_point in found:
            if entry_point.name in self.blocked or (entry_point.name, entry_point.value) in seen:
                continue  # blocked, or the same plugin again through stale metadata (a renamed install)
            seen.add((entry_point.name, entry_point.value))
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
        if origin.plugin in self.blocked:
            return
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
        for caller in (hooks.alsek_register_backends, hooks.alsek_register_serializers,
                       hooks.alsek_register_middleware):
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
        reg.middlewares = [(m, o) for m, o in reg.middlewares if o != origin]

    def add_commands(self, group: click.Group) -> list[str]:
        """Ask each plugin for its CLI commands on its own, so one broken plugin
        hides no other; returns the problems, one line each."""
        problems = []
        for impl in self.manager.hook.alsek_add_commands.get_hookimpls():
            try:
                impl.function(cli=group)
            except Exception as exc:
                text = " ".join(str(exc).split())
                problems.append(
                    f"plugin {impl.plugin_name!r} could not add its commands: "
                    f"{type(exc).__name__}: {text}"
                )
        return problems

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

    def backend_origin(self, spec: BackendSpec) -> Origin:
        return self.registry.backends[spec.name][1]

    def check_driver(self, spec: BackendSpec | SerializerSpec, origin: Origin) -> None:
        """Raise a one-line MissingDriverError naming what to install."""
        missing = missing_modules(spec.requires)
        if missing:
            raise MissingDriverError(f"{spec.name}: {self.install_hint(spec, origin, missing)}")

    @staticmethod
    def install_hint(spec: BackendSpec | SerializerSpec, origin: Origin, missing: list[str]) -> str:
        target = f"{origin.distribution}[{spec.extra}]" if spec.extra else " ".join(missing)
        return f"driver {', '.join(repr(m) for m in missing)} is not installed: pip install '{target}'"

    def known_schemes(self) -> list[str]:
        return sorted(self.registry.schemes)

    def serializer(self, name: str) -> Serializer:
        found = self.registry.serializers.get(name)
        if found is None:
            known = ", ".join(sorted(self.registry.serializers)) or "none"
            raise ConfigError(
                f"unknown serializer {name!r}; known serializers: {known}" + self.error_hint()
            )
        self.check_driver(*found)
        return found[0].factory()

    def error_hint(self) -> str:
        if not self.registry.errors:
            return ""
        return " (plugin errors: " + "; ".join(str(e) for e in self.registry.errors) + ")"

    def describe(self) -> list[dict[str, Any]]:
        """Every registered backend and serializer, where it came from, and
        whether its driver is importable (``alsek backends``)."""
        reg = self.registry
        specs: list[tuple[str, BackendSpec | SerializerSpec, Origin]] = [
            ("backend", spec, origin) for spec, origin in reg.backends.values()
        ]
        specs += [("serializer", spec, origin) for spec, origin in reg.serializers.values()]
        rows = []
        for kind, spec, origin in specs:
            missing = missing_modules(spec.requires)
            rows.append({
                "kind": kind,
                "name": spec.name,
                "schemes": list(spec.schemes) if isinstance(spec, BackendSpec) else [],
                "origin": str(origin),
                "driver": self.install_hint(spec, origin, missing) if missing else "ok",
                "description": spec.description,
            })
        return rows


_host: PluginHost | None = None
_lock = threading.Lock()


def plugin_host() -> PluginHost:
    """The process-wide host, loading entry points on first use."""
    global _host
    with _lock:
        if _host is None:
            host = PluginHost(blocked=blocked_plugins())
            host.load_entry_points()
            _host = host
        return _host


def serializer_by_name(name: str) -> Serializer:
    return plugin_host().serializer(name)


def default_serializer() -> Serializer:
    return serializer_by_name(serializer_name())


def describe() -> list[dict[str, Any]]:
    """Every registered backend and serializer with where it came from (``alsek backends``)."""
    return plugin_host().describe()
