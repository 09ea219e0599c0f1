"""What a new user meets when the configuration is wrong, run as they run it
(the ``alsek`` command in a subprocess): secrets are never printed, looking
never creates a store, a missing driver or a typo is one line saying what to
fix (exit 2), and only a backend that does not answer is an outage (exit 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SECRET = "S3cr3tPw"
#: Every form a secret can take in a backend URL (issue 10, item 9).
SECRET_URLS = [
    f"redis://:{SECRET}@127.0.0.1:1/0",
    f"redis://user:{SECRET}@127.0.0.1:1/0?password={SECRET}",
    f"redis://127.0.0.1:1/0?token={SECRET}&nmespace=x",
    f"redis://:{SECRET}@127.0.0.1:notaport/0",
    f"redis//:{SECRET}@127.0.0.1",
    f"postgresql://u:{SECRET}@127.0.0.1:1/db",
    f"postgresql://u@127.0.0.1:1/db?password={SECRET}",
    f"postgresql://u@127.0.0.1:1/db?sslpassword={SECRET}&bogus=1",
]
#: Makes ``import redis`` fail as if the extra were not installed.
BLOCK_REDIS = textwrap.dedent("""
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == "redis" or name.startswith("redis."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Block())
    from alsek_cli.main import main
    main()
""")


def alsek(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
          code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "alsek_cli"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALSEK_")}
    return subprocess.run([*command, *args], cwd=cwd, text=True, capture_output=True, timeout=120,
                          env={**environment, **(env or {})})


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("url", SECRET_URLS)
def test_no_command_prints_a_secret(url: str, tmp_path: Path) -> None:
    (tmp_path / "one_task.py").write_text("from alsek import Broker, task\n"
                                          "@task(Broker())\ndef t() -> None: ...\n")
    runs = [
        alsek("healthcheck", "--backend", url),
        alsek("healthcheck", "--backend", url, "--log-level", "debug"),
        alsek("queues", "--backend", url),
        alsek("jobs", "--json", env={"ALSEK_BACKEND_URL": url}),
        alsek("thread-pool", "one_task", "--backend", url, "--log-level", "debug", cwd=tmp_path),
        alsek("process-pool", "one_task", "--log-level", "debug", cwd=tmp_path, env={"ALSEK_BACKEND_URL": url}),
    ]
    for run in runs:
        assert run.returncode in (1, 2), run
        assert SECRET not in run.stdout + run.stderr, run.args


def test_read_only_commands_never_create_a_store(tmp_path: Path) -> None:
    for command in (["queues"], ["healthcheck"], ["jobs"], ["status", "x"], ["result", "x"], ["dlq", "list"]):
        run = alsek(*command, cwd=tmp_path)
        assert run.returncode == 2, run
        line = error_line(run)
        assert f"no store exists at sqlite:///{tmp_path.resolve()}/.alsek" in line
        assert "the default: .alsek in the working directory" in line
    assert list(tmp_path.iterdir()) == []


def test_the_default_store_is_the_projects_from_any_subfolder(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "tasks.py").write_text("from alsek import Broker, task\n"
                                                "@task(Broker())\ndef t() -> None: ...\n"
                                                "if __name__ == '__main__':\n    t.generate()\n")
    subprocess.run([sys.executable, "app/tasks.py"], cwd=tmp_path, check=True, timeout=60,
                   env={k: v for k, v in os.environ.items() if not k.startswith("ALSEK_")})
    assert (tmp_path / ".alsek").is_dir()
    from_subfolder = alsek("queues", cwd=tmp_path / "app")
    assert from_subfolder.returncode == 0, from_subfolder.stderr
    assert f"sqlite:///{tmp_path.resolve()}/.alsek" in from_subfolder.stdout.replace("\n", "")
    health = alsek("healthcheck", cwd=tmp_path / "app")
    assert health.returncode == 0 and f"{tmp_path.resolve()}/pyproject.toml" in health.stdout
    assert not (tmp_path / "app" / ".alsek").exists()


def test_a_missing_driver_says_which_extra_to_install() -> None:
    run = alsek("healthcheck", "--backend", "redis://127.0.0.1:6379/0", code=BLOCK_REDIS)
    assert run.returncode == 2
    assert "driver 'redis' is not installed: pip install '" in error_line(run)
    assert "[redis]'" in error_line(run)
    listing = json.loads(alsek("backends", "--json", code=BLOCK_REDIS).stdout)
    drivers = {row["name"]: row["driver"] for row in listing["registered"]}
    assert drivers["diskcache"] == "ok" and "[redis]'" in drivers["redis"]


def test_configuration_mistakes_exit_2_and_outages_exit_1(tmp_path: Path) -> None:
    typo = alsek("healthcheck", "--backend", "redis://127.0.0.1:6379/15?nmespace=x")
    assert typo.returncode == 2
    assert "unknown redis URL parameter 'nmespace'; known parameters: " in error_line(typo)
    assert "namespace" in error_line(typo) and "TypeError" not in typo.stderr
    for url, says in [("nosuch://x", "no backend for URL scheme 'nosuch'"),
                      (f"sqlite:///{tmp_path}/s?serializer=yaml", "unknown serializer 'yaml'"),
                      (f"sqlite:///{tmp_path}/s?nmespace=x", "unknown diskcache URL parameter 'nmespace'"),
                      ("postgresql://127.0.0.1:1/db?bogus=1", "unknown postgres URL parameter 'bogus'")]:
        run = alsek("healthcheck", "--backend", url)
        assert run.returncode == 2 and "misconfigured" in error_line(run) and says in error_line(run), run
    down = alsek("healthcheck", "--backend", "redis://127.0.0.1:1/0")
    assert down.returncode == 1 and "does not answer" in error_line(down)
    typo_in_a_pool = alsek("queues", "--backend", "redis://127.0.0.1:6379/15?nmespace=x")
    assert typo_in_a_pool.returncode == 2 and "'nmespace'" in error_line(typo_in_a_pool)


def test_plugins_can_be_blocked_by_env_and_by_pyproject(tmp_path: Path) -> None:
    by_env = json.loads(alsek("backends", "--json", env={"ALSEK_BLOCK_PLUGINS": "redis, postgres"}).stdout)
    assert {row["name"] for row in by_env["registered"] if row["kind"] == "backend"} == {"diskcache", "memory"}
    (tmp_path / "pyproject.toml").write_text('[tool.alsek]\nblock_plugins = ["postgres"]\n')
    by_config = json.loads(alsek("backends", "--json", cwd=tmp_path).stdout)
    assert "postgres" not in {row["name"] for row in by_config["registered"]}
    assert "  db " not in alsek("--help", cwd=tmp_path).stdout


def test_no_package_metadata_is_one_clear_line() -> None:
    code = ("import importlib.metadata as md\n"
            "md.entry_points = lambda group: []\n"
            "from alsek_cli.main import main\nmain()\n")
    run = alsek("queues", code=code)
    assert run.returncode == 2
    assert "no 'alsek' plugins are installed" in error_line(run) and "pip install -e ." in error_line(run)
