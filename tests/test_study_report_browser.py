"""The study report rendered in headless Chromium (playwright): every plot loads as an image and
every arm's name is on the page; a screenshot is saved. The study behind it runs on the test-only
engine of test_studies.py (`scripted_factory`) (the report's figures are checked there)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import mlflow
import pytest

from liftdspy.studies import load_study
from liftdspy.studies.executors import InProcessExecutor
from liftdspy.studies.report import PLOTS, build_report, write_report
from liftdspy.studies.runner import prepare_study, run_study

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_studies import scripted_factory, write_study  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def test_report_page_shows_every_plot_and_arm(tmp_path, monkeypatch):
    executable = _chromium()
    if os.environ.get("CI") == "true":
        from playwright import sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    config = load_study(write_study(tmp_path))
    run_study(prepare_study(config), InProcessExecutor(scripted_factory))
    mlflow.end_run()
    index = write_report(build_report(config.tracking.uri, config.name), tmp_path / "report")
    screenshot = tmp_path / "study-report.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 2400})
            page.goto(index.as_uri(), wait_until="load")
            for name in PLOTS:
                width = page.eval_on_selector(f"#plot-{name}", "img => img.naturalWidth")
                assert width > 300, f"plot {name} did not load"
            body = page.inner_text("body")
            for arm in ("zero-shot", "random-demos", "labeled"):
                assert arm in body
            assert "with 4 tasks × 2 seeds" in page.inner_text("#mde")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    print(f"study report screenshot: {screenshot}")
    assert screenshot.stat().st_size > 20_000
