"""A bad plugin is reported by name and hides no other plugin."""

from __future__ import annotations

import types
from typing import Any

import pytest

from alsek_core import DISTRIBUTION
from alsek_core.config import backend_from_url
from alsek_core.errors import ConfigError, PluginError
from alsek_core.plugins import BackendSpec, Origin, PluginHost, Registry, describe, hookimpl


def _plugin(name: str, **hooks: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def _backend_plugin(name: str, *schemes: str) -> types.ModuleType:
    def alsek_register_backends(register: Registry) -> None:
        register.backend(BackendSpec(name, schemes, factory=lambda url, **o: (name, url)))

    return _plugin(name, alsek_register_backends=alsek_register_backends)


def test_builtins_are_discovered_through_entry_points() -> None:
    rows = describe()
    names = {(r["kind"], r["name"]) for r in rows}
    assert {("backend", "diskcache"), ("serializer", "json"), ("serializer", "msgpack")} <= names
    disk = next(r for r in rows if r["name"] == "diskcache")
    assert f"plugin 'diskcache' ({DISTRIBUTION} " in disk["origin"]


def test_duplicate_scheme_names_both_plugins_and_keeps_others() -> None:
    host = PluginHost()
    host.register(_backend_plugin("first", "dup", "only-first"), Origin("first", "dist-a", "1.0"))
    host.register(
        _backend_plugin("second", "dup", "only-second"), Origin("second", "dist-b", "2.0")
    )
    assert (
        "plugin 'second' (dist-b 2.0): URL scheme 'dup' is already taken by plugin 'first'"
        in str(host.registry.errors[0])
    )
    with pytest.raises(PluginError, match=r"claimed by plugin 'first'.*and plugin 'second'"):
        host.backend_spec("dup")
    assert host.backend_spec("only-first").name == "first"
    assert host.backend_spec("only-second").name == "second"


def test_failing_hook_is_reported_and_others_load() -> None:
    def broken(register: Registry) -> None:
        raise RuntimeError("kaboom")

    host = PluginHost()
    host.register(_plugin("broken", alsek_register_backends=broken), Origin("broken", "bad-dist"))
    host.register(_backend_plugin("good", "good"), "good")
    assert (
        "plugin 'broken' (bad-dist): alsek_register_backends failed: RuntimeError('kaboom')"
        in str(host.registry.errors[0])
    )
    assert host.backend_spec("good").name == "good"


def test_unknown_hook_is_an_invalid_plugin() -> None:
    def alsek_not_a_hook() -> None: ...

    with pytest.raises(PluginError, match=r"plugin 'typo'.*invalid plugin"):
        PluginHost().register(_plugin("typo", alsek_not_a_hook=alsek_not_a_hook), "typo")


def test_entry_point_that_fails_to_import(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    broken = md.EntryPoint(name="ghost", value="no_such_module_anywhere", group="alsek")
    real = md.entry_points(group="alsek")
    monkeypatch.setattr(md, "entry_points", lambda group: [broken, *real])
    host = PluginHost()
    host.load_entry_points()
    assert any(
        "plugin 'ghost'" in str(e) and "failed to load" in str(e) for e in host.registry.errors
    )
    assert host.backend_spec("sqlite").name == "diskcache"


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"no backend for URL scheme 'nope'; known schemes: .*sqlite"
    ):
        backend_from_url("nope://x")


@pytest.mark.parametrize("url", ["not a url", "127.0.0.1:6379", ""])
def test_malformed_url_is_clear(url: str) -> None:
    with pytest.raises(ConfigError, match="malformed backend URL"):
        backend_from_url(url)


def test_a_blocked_plugin_is_never_loaded() -> None:
    host = PluginHost(blocked=frozenset({"unwanted"}))
    host.register(_backend_plugin("unwanted", "unwanted"), "unwanted")
    with pytest.raises(ConfigError, match="no backend for URL scheme 'unwanted'"):
        host.backend_spec("unwanted")


def test_no_package_metadata_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    monkeypatch.setattr(md, "entry_points", lambda group: [])
    with pytest.raises(PluginError, match=r"no 'alsek' plugins are installed.*pip install -e \."):
        PluginHost().load_entry_points()


def test_add_commands_is_typed_and_reports_a_broken_plugin() -> None:
    import click

    def good(cli: click.Group) -> None:
        cli.add_command(click.Command("hello"))

    def bad(cli: click.Group) -> None:
        raise RuntimeError("no commands today")

    host = PluginHost()
    host.register(_plugin("good", alsek_add_commands=good), "good")
    host.register(_plugin("bad", alsek_add_commands=bad), "bad")
    group = click.Group("alsek")
    problems = host.add_commands(group)
    assert "hello" in group.commands
    assert problems == ["plugin 'bad' could not add its commands: RuntimeError: no commands today"]


def test_describe_says_whether_each_driver_is_importable() -> None:
    host = PluginHost()

    def register(register: Registry) -> None:
        register.backend(BackendSpec("ghostdb", ("ghost",), factory=lambda url, **o: None,
                                     requires=("no_such_driver_anywhere",), extra="ghost"))

    host.register(_plugin("ghost", alsek_register_backends=register), Origin("ghost", "ghost-dist"))
    row = next(r for r in host.describe() if r["name"] == "ghostdb")
    assert row["driver"] == "driver 'no_such_driver_anywhere' is not installed: pip install 'ghost-dist[ghost]'"
