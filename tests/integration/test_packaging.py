"""The built wheel is the product: installed in a fresh virtualenv, from an
empty directory with no source tree in sight, it brings the ``alsek`` command
and runs the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from alsek_core import DISTRIBUTION

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("ALSEK_")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_wheel_installs_and_runs_the_demo_in_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("*.whl")
    assert wheel.name.startswith(DISTRIBUTION.replace("-", "_") + "-")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", f"{wheel}[msgpack]", cwd=tmp_path)

    empty = tmp_path / "empty"
    empty.mkdir()
    where = run(python, "-c", "import alsek, alsek_cli; print(alsek.__file__)", cwd=empty).stdout
    assert str(ROOT) not in where and str(env_dir) in where, "the installed copy, not the source tree"
    version = run(env_dir / "bin" / "alsek", "--version", cwd=empty)
    assert "0.1.0" in version.stdout
    demo = run(env_dir / "bin" / "alsek", "demo", "--tasks", "60", "--n-processes", "1", cwd=empty)
    assert "succeeded" in demo.stdout and "lost" in demo.stdout, demo.stdout
    assert list(empty.iterdir()) == [], "the demo leaves nothing behind"
    backends = run(env_dir / "bin" / "alsek", "backends", "--json", cwd=empty).stdout
    assert f"pip install '{DISTRIBUTION}[redis]'" in backends, "without the extra, the driver is missing"
