"""The docs stay true: the site builds strictly, generated pages match their generators, the
README stays a landing page whose links resolve, and every variable the package reads is listed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mkdocs_builds_strictly(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "python-api" / "index.html").is_file()


def test_readme_is_a_landing_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert targets, "the README links to its docs"
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_config_reference_is_current():
    result = subprocess.run(
        [sys.executable, "scripts/config_reference.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    committed = (ROOT / "docs" / "reference" / "config.md").read_text()
    assert committed == result.stdout, (
        "docs/reference/config.md is stale: python scripts/config_reference.py > "
        "docs/reference/config.md"
    )


def test_every_liftdspy_variable_is_documented():
    used: set[str] = set()
    for path in (ROOT / "liftdspy").rglob("*.py"):
        used |= set(re.findall(r"[\"'](LIFTDSPY_[A-Z0-9_]+)[\"']", path.read_text()))
    assert "LIFTDSPY_RECORDER" in used
    page = (ROOT / "docs" / "reference" / "environment.md").read_text()
    undocumented = sorted(v for v in used if f"`{v}`" not in page)
    assert not undocumented, f"docs/reference/environment.md does not list {undocumented}"
