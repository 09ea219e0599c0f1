"""Backend choice: argument > CLI > env > pyproject > embedded default."""

from __future__ import annotations

from pathlib import Path

import pytest

from alsek_backends.diskcache import DiskCacheBackend
from alsek_core.config import backend_from_url
from alsek_core.errors import ConfigError
from alsek_core.settings import backend_url, resolve_backend_url, serializer_name


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALSEK_BACKEND_URL", raising=False)
    monkeypatch.delenv("ALSEK_SERIALIZER", raising=False)
    return tmp_path.resolve()


def test_default_is_embedded_and_absolute(project: Path) -> None:
    assert backend_url() == f"sqlite:///{project}/.alsek"
    assert "working directory" in resolve_backend_url().source
    assert serializer_name() == "json"


def test_default_store_is_next_to_the_projects_pyproject(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "app"\n')
    (project / "src" / "app").mkdir(parents=True)
    monkeypatch.chdir(project / "src" / "app")
    setting = resolve_backend_url()
    assert setting.value == f"sqlite:///{project}/.alsek"
    assert str(project / "pyproject.toml") in setting.source


def test_precedence(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "pyproject.toml").write_text('[tool.alsek]\nbackend = "redis://from-pyproject"\n')
    assert backend_url() == "redis://from-pyproject"
    monkeypatch.setenv("ALSEK_BACKEND_URL", "redis://from-env")
    assert backend_url() == "redis://from-env"
    assert backend_url(cli="redis://from-cli") == "redis://from-cli"
    assert backend_url("redis://explicit", cli="redis://from-cli") == "redis://explicit"


def test_pyproject_found_from_a_subfolder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "pyproject.toml").write_text('[tool.alsek]\nserializer = "msgpack"\n')
    (project / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(project / "deep" / "er")
    assert serializer_name() == "msgpack"


def test_url_parameters_namespace_and_serializer(project: Path) -> None:
    backend = backend_from_url(f"sqlite:///{project}/store?namespace=tenant1&serializer=msgpack")
    assert isinstance(backend, DiskCacheBackend)
    assert backend.namespace == "tenant1"
    assert type(backend.serializer).__name__ == "MsgpackSerializer"
    backend.set("k", {"v": [1, 2]})
    assert backend.get("k") == {"v": [1, 2]}


def test_relative_sqlite_url(project: Path) -> None:
    backend = backend_from_url("sqlite:///rel/dir")
    backend.set("x", 1)
    assert (project / "rel" / "dir").is_dir()


def test_bad_sqlite_urls(project: Path) -> None:
    with pytest.raises(ConfigError, match="no directory"):
        backend_from_url("sqlite:///")
    with pytest.raises(ConfigError, match="malformed sqlite URL"):
        backend_from_url("sqlite://host/dir")
    with pytest.raises(ConfigError, match="unknown serializer 'yaml'"):
        backend_from_url("sqlite:///x?serializer=yaml")


def test_adapter_parameters_pass_through_as_written() -> None:
    from alsek_core.config import split_url

    scheme, url, ours = split_url("postgresql://h/db?options=-c%20search_path%3Dx&namespace=n&sslmode=disable")
    assert (scheme, ours) == ("postgresql", {"namespace": "n"})
    assert url == "postgresql://h/db?options=-c%20search_path%3Dx&sslmode=disable"
