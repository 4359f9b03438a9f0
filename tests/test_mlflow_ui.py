"""`liftdspy ui`: the command line it builds, and the real MLflow UI driven in headless Chromium
to the compare view of two runs of a store populated by the test."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import typer
from typer.testing import CliRunner

from liftdspy.cli.ui_cmd import health_request, mlflow_server_command, mlflow_server_env, ui

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT = 90.0
UI_TIMEOUT_MS = 30_000

runner = CliRunner()
app = typer.Typer()
app.command()(ui)


def test_server_command_serves_the_sqlite_store_with_artifacts_beside_it(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = mlflow_server_command(uri, "127.0.0.1", 5123, 1)
    assert command[:4] == [sys.executable, "-m", "mlflow", "server"]
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options["--backend-store-uri"] == uri
    assert options["--artifacts-destination"] == str(tmp_path.resolve() / "mlartifacts")
    assert (options["--host"], options["--port"]) == ("127.0.0.1", "5123")
    assert mlflow_server_env()["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_ui_refuses_a_store_that_is_already_a_server() -> None:
    # A tracking server is its own UI; one that does not answer is an error (a free port: no
    # server listens there).
    result = runner.invoke(app, ["--tracking-uri", f"http://127.0.0.1:{_free_port()}"])
    assert result.exit_code == 1
    assert "already a tracking server" in result.output
    assert "did not answer" in " ".join(result.output.split())


class _Health(BaseHTTPRequestHandler):
    """Test-only stand-in for a tracking server: answers GET /health, remembers the auth."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        _Health.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


def test_ui_on_a_tracking_server_prints_its_address_without_the_credentials() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    try:
        result = runner.invoke(app, ["--tracking-uri", f"http://alice:s3cret-9@127.0.0.1:{port}"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.exit_code == 0, result.output
    assert f"MLflow UI: http://<redacted>@127.0.0.1:{port}" in result.output
    assert "s3cret-9" not in result.output
    # The credentials went as basic auth, as MLflow's own client sends them.
    assert _Health.seen == [("/health", "Basic " + base64.b64encode(b"alice:s3cret-9").decode())]
    assert health_request(f"http://127.0.0.1:{port}/").full_url == f"http://127.0.0.1:{port}/health"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_http_200(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"liftdspy ui exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(
        f"no HTTP 200 from {url} in {SERVER_START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture
def ui_server(tmp_path: Path):
    """Two runner-shaped runs in a fresh SQLite store, served by `liftdspy ui` (its real
    command function, run in a subprocess like the installed CLI would)."""
    import mlflow

    from liftdspy.tracking import configure_tracking
    from tests.test_compare import BASE, BETTER, IDS, log_experiment_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = configure_tracking(uri, "ui-compare")
    common = {"program": "pipeline", "ids": IDS, "baseline": BASE}
    runs = {
        "base-run": (
            log_experiment_run(
                "base-run", optimizer="bootstrap", optimized=BASE, lm_calls=20, **common
            ),
            sum(BASE) / len(BASE),
        ),
        "better-run": (
            log_experiment_run(
                "better-run", optimizer="mipro", optimized=BETTER, lm_calls=90, **common
            ),
            sum(BETTER) / len(BETTER),
        ),
    }
    mlflow.set_tracking_uri("")

    port = _free_port()
    log = tmp_path / "ui.log"
    script = (
        "import typer; from liftdspy.cli.ui_cmd import ui; "
        "app = typer.Typer(); app.command()(ui); app()"
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", script, "--port", str(port), "--tracking-uri", uri],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the server's workers stop with it
            env={**os.environ, "COLUMNS": "200"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http_200(url, process, log)
        yield {"url": url, "experiment_id": experiment_id, "runs": runs, "log": log}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _visible_texts_on_line_of(page, label: str) -> list[str]:
    """The texts a user sees on the same line as `label`, right of it, left to right.

    The compare page draws labels and values in separate grids, so lines are matched by
    position; an element counts only if it is what the browser draws at its own centre (not
    clipped by a grid's scroll box, not covered). Nothing scrolls here: scrolling a label into
    view would scroll its grid alone and misalign the two grids."""
    return page.evaluate(
        """(label) => {
            const drawn = (el) => {
                const r = el.getBoundingClientRect();
                const x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
                const hit = document.elementFromPoint(x, y);
                return hit !== null && (hit === el || el.contains(hit) || hit.contains(el));
            };
            const leaves = [...document.querySelectorAll('body *')].filter(
                (el) => !el.children.length && el.textContent.trim());
            // The innermost drawn element holding exactly the label (a metric name is a link
            // with an icon inside, so not a leaf).
            const name = [...document.querySelectorAll('body *')]
                .filter((el) => el.textContent.trim() === label && drawn(el))
                .pop();
            if (!name) return [];
            const box = name.getBoundingClientRect();
            const cells = [];
            for (const el of leaves) {
                const r = el.getBoundingClientRect();
                const mid = (r.top + r.bottom) / 2;
                if (mid >= box.top && mid <= box.bottom && r.left >= box.right && drawn(el)) {
                    cells.push([r.left, el.textContent.trim()]);
                }
            }
            return cells.sort((a, b) => a[0] - b[0]).map((c) => c[1]);
        }""",
        label,
    )


@pytest.mark.browser
@pytest.mark.slow
def test_mlflow_ui_compares_two_runs_side_by_side(ui_server, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    runs = ui_server["runs"]
    screenshot = tmp_path / "mlflow-compare.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.set_default_timeout(UI_TIMEOUT_MS)
            # The UI polls forever: wait for "load" and then for text, never "networkidle".
            page.goto(ui_server["url"] + "/", wait_until="load")
            # MLflow 3 opens on its GenAI view; runs live under "Model training".
            page.get_by_text("Model training", exact=True).first.click()
            page.get_by_role("link", name="Experiments").first.click()
            page.get_by_text("ui-compare", exact=True).first.click()
            for name in runs:
                page.get_by_text(name, exact=True).first.wait_for()
            for name in runs:
                row = page.locator('[role="row"]', has_text=name).first
                index = row.get_attribute("row-index")
                boxes = page.locator(f'[role="row"][row-index="{index}"] input[type="checkbox"]')
                boxes.filter(visible=True).first.check()
            page.get_by_role("button", name="Compare").first.click()
            page.wait_for_url("**/compare-runs?**")
            for run_id, _ in runs.values():
                assert run_id in page.url
            assert json.dumps([ui_server["experiment_id"]]) in urllib.parse.unquote(page.url)

            page.get_by_text("Comparing 2 Runs", exact=False).first.wait_for()
            for name in runs:
                page.get_by_text(name, exact=True).first.wait_for()
            # Each run's name and its optimized_score share a column, in the same order.
            columns = [t for t in _visible_texts_on_line_of(page, "Run Name:") if t in runs]
            assert sorted(columns) == sorted(runs), columns
            # The metrics grid shows ~7 rows; "show diff only" leaves the ones that differ.
            page.get_by_role("switch", name="Metrics - Show diff only").click()
            page.wait_for_timeout(500)
            line = _visible_texts_on_line_of(page, "optimized_score")
            shown = [float(t) for t in line if re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?", t)]
            expected = [runs[name][1] for name in columns]
            assert shown == pytest.approx(expected, abs=1e-3), (columns, shown)
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    print(f"MLflow compare screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
