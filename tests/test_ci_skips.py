"""tests/conftest.py's CI rule: with CI=true a skip for a missing requirement is a failure.

Runs a small test file under the real conftest with pytester, once as CI and once locally.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent

SAMPLE = """
import pytest

def test_runtime_skip():
    pytest.skip("chromium is not installed")

@pytest.mark.skipif(True, reason="OS isolation needs root")
def test_marker_skip():
    pass

def test_importorskip():
    pytest.importorskip("no_such_module_liftdspy")

def test_opt_in():
    pytest.skip("opt-in: run with pytest -m vllm")

def test_passes():
    assert True
"""


@pytest.fixture
def sample(pytester: pytest.Pytester) -> pytest.Pytester:
    for name in ("conftest.py", "fixtures_server.py", "fixtures_postgres.py"):
        shutil.copy(HERE / name, pytester.path / name)
    pytester.makepyfile(test_sample=SAMPLE)
    module_skip = "import pytest\npytest.importorskip('no_such_module_liftdspy')\n"
    pytester.makepyfile(module_skip=module_skip)
    (pytester.path / "module_skip.py").rename(pytester.path / "test_module_skip.py")
    return pytester


def test_in_ci_every_skip_but_opt_in_fails_with_its_reason(sample, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = sample.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    # Setup-phase skips (skipif) and module-level skips become errors, call-phase ones failures.
    result.assert_outcomes(passed=1, failed=2, skipped=1, errors=2)
    result.stdout.fnmatch_lines(["*CI=true*Reason: chromium is not installed*"])
    result.stdout.fnmatch_lines(["*CI=true*Reason: OS isolation needs root*"])


def test_locally_skips_stay_skips_and_are_listed(sample, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = sample.runpytest_subprocess("-p", "no:cacheprovider", "-ra")
    result.assert_outcomes(passed=1, skipped=5)
    result.stdout.fnmatch_lines(["SKIPPED*chromium is not installed*"])
