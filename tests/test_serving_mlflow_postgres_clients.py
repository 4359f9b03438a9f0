"""The clients of the team MLflow server on PostgreSQL: `export`, `evaluate`, `study run` +
`study report` and `liftdspy ui`, each the installed CLI in its own process, reaching the server
only through `MLFLOW_TRACKING_URI`.

The server is the session's `mlflow_team_server` (conftest.py: one PostgreSQL and one
`liftdspy server` per session, shared with test_serving_mlflow_postgres.py). Everything replays
offline from the committed recordings: the demo experiment (`cache/recordings/demo.jsonl`) into
its own experiment on the server, the evaluation of its run on the demo's eval examples (the same
calls), and the shipped study (`cache/recordings/study-demo.jsonl`, so the figures must be
`studies/demo.figures.json`). Artifacts go through the
server's artifact proxy (`--artifacts-destination`) and are read back through it.

The server runs MLflow's basic auth; the clients log in as the `editor` user through
`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` (so they create, and manage, the
experiments they log to). Their environment also holds the database and admin passwords (as the
shell of a researcher who started the server would), and their tracking URI carries the editor's
credentials too (`http://USER:PASSWORD@HOST:PORT`, as some teams write it; MLflow sends a URI's
credentials ahead of the environment's, so they must be the same user's): what the server stores
(a `pg_dump` of the database and every file under the artifact root) and what the clients print
must contain none of them, except MLflow's own salted hashes of the users' passwords in its
`users` table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures_postgres import (
    ADMIN_PASSWORD,
    ADMIN_PASSWORD_ENV,
    DB_PASSWORD,
    EDITOR_PASSWORD,
    EDITOR_USER,
    PASSWORD_ENV,
    SECRETS,
    PostgresServer,
    TeamServer,
    logged_in_as,
    postgres_bin_dir,
    team_env,
)

from liftdspy.lm.store import RecordingStore, ensure_imported

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"
DEMO_RECORDING = ROOT / "cache" / "recordings" / "demo.jsonl"
STUDY = ROOT / "studies" / "demo.yaml"
STUDY_RECORDING = ROOT / "cache" / "recordings" / "study-demo.jsonl"
FIGURES = ROOT / "studies" / "demo.figures.json"
DEMO_EXPERIMENT = "liftdspy-demo-team"  # not liftdspy-demo: the concurrent-runs test counts that
CLI_TIMEOUT = 900

# A test's set-up may start PostgreSQL and the server and replay the demo (120 s alone on 2 shared
# cores, several times that under load).
pytestmark = [pytest.mark.slow, pytest.mark.local, pytest.mark.timeout(900)]

if os.environ.get("CI") == "true":
    import llama_cpp  # noqa: F401 - in CI the local extra must be there
else:
    pytest.importorskip("llama_cpp", reason="the recorded engine needs the `local` extra")


@dataclass(frozen=True)
class Clients:
    """How the tests run the CLI against the team server."""

    url: str  # the server, without credentials (for the tests' own client)
    env: dict[str, str]
    logs: Path

    def run(self, name: str, *args: str, timeout: float = CLI_TIMEOUT, stdout: bool = False) -> str:
        """`liftdspy ARGS` in a subprocess; its output, or only its stdout (both kept in
        logs/NAME.log)."""
        done = subprocess.run(
            [sys.executable, "-m", "liftdspy.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        (self.logs / f"{name}.log").write_text(output)
        assert done.returncode == 0, f"liftdspy {' '.join(args)}:\n{output[-4000:]}"
        return done.stdout if stdout else output

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.url)


@pytest.fixture(scope="module", autouse=True)
def _tests_read_as_the_editor() -> Iterator[None]:
    """The tests' own MLflow clients log in as the clients' user."""
    with logged_in_as(EDITOR_USER):
        yield


@pytest.fixture(scope="module")
def clients(mlflow_team_server: TeamServer, tmp_path_factory: pytest.TempPathFactory) -> Clients:
    logs = tmp_path_factory.mktemp("client-logs")
    env = team_env(
        EDITOR_USER,
        MLFLOW_TRACKING_URI=mlflow_team_server.url.replace(
            "://", f"://{EDITOR_USER}:{EDITOR_PASSWORD}@"
        ),
        # The shell that started the server: its passwords are in the clients' environment too.
        **{
            PASSWORD_ENV: DB_PASSWORD,
            "LIFTDSPY_DB_PASSWORD": DB_PASSWORD,
            "PGPASSWORD": DB_PASSWORD,
            ADMIN_PASSWORD_ENV: ADMIN_PASSWORD,
        },
    )
    env.pop("LIFTDSPY_RECORDER", None)  # each command says --recorder offline itself
    return Clients(mlflow_team_server.url, env, logs)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("demo-store")
    ensure_imported(DEMO_RECORDING, RecordingStore(store))
    return store


@pytest.fixture(scope="module")
def demo_run(clients: Clients, demo_store: Path):
    """The demo experiment replayed against the server; its MLflow run."""
    output = clients.run(
        "run-demo",
        "run",
        str(DEMO),
        "--recorder",
        "offline",
        "--set",
        f"lm.recorder.path={demo_store}",
        "--set",
        f"tracking.experiment={DEMO_EXPERIMENT}",
    )
    client = clients.client()
    experiment = client.get_experiment_by_name(DEMO_EXPERIMENT)
    (run,) = client.search_runs(
        [experiment.experiment_id], "tags.`liftdspy.role` = 'experiment'", max_results=10
    )
    assert run.info.run_id in output
    return run


@pytest.fixture(scope="module")
def export_dir(clients: Clients, demo_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "demo"
    clients.run(
        "export",
        "export",
        demo_run.info.run_id,
        "--out",
        str(out),
        "--register",
        "--prompt-prefix",
        "team-demo",
    )
    return out


@pytest.fixture(scope="module")
def evaluation(clients: Clients, demo_run, demo_store: Path):
    """`liftdspy evaluate RUN_ID --runtime` on the demo's eval examples (file order, first 16:
    the calls the demo run made, so all replay)."""
    output = clients.run(
        "evaluate",
        "evaluate",
        demo_run.info.run_id,
        "--dataset",
        "datasets/core",
        "--split",
        "test",
        "-n",
        demo_run.data.params["data.eval_size"],
        "--lm",
        str(DEMO),
        "--set",
        f"recorder.path={demo_store}",
        "--recorder",
        "offline",
        "--runtime",
    )
    found = re.search(r"evaluation run: ([0-9a-f]{32})", output)
    assert found, output[-3000:]
    return clients.client().get_run(found.group(1)), output


@pytest.fixture(scope="module")
def study(clients: Clients, tmp_path_factory: pytest.TempPathFactory):
    """The shipped study (every arm, replayed offline from its committed recording), run and then
    reported from the server's runs by another process."""
    base = tmp_path_factory.mktemp("study")
    store = base / "store"
    ensure_imported(STUDY_RECORDING, RecordingStore(store))
    clients.run(
        "study-run",
        "study",
        "run",
        str(STUDY),
        "--recorder",
        "offline",
        "--set",
        f"lm.recorder.path={store}",
        "--report",
        str(base / "run-report"),
    )
    figures = json.loads(
        clients.run("study-report-json", "study", "report", "demo", "--json", stdout=True)
    )
    clients.run("study-report", "study", "report", "demo", "--out", str(base / "report"))
    return figures, base / "report"


# ---- export ----------------------------------------------------------------------------------


def test_export_of_a_server_run_is_the_shipped_pack(export_dir: Path, demo_run, clients) -> None:
    from liftdspy.runtime import load_pack

    manifest = json.loads((export_dir / "manifest.json").read_text())
    assert manifest["source_run_id"] == demo_run.info.run_id
    pack = load_pack(export_dir)
    assert pack.model.model == "smollm2-135m"
    # The replay compiles the same program as the recorded run the shipped export came from.
    shipped = json.loads((ROOT / "programs" / "demo" / "prompt_pack.json").read_text())
    assert json.loads((export_dir / "prompt_pack.json").read_text()) == shipped
    # --register put each predictor in the server's prompt registry (on PostgreSQL).
    import mlflow

    mlflow.set_tracking_uri(clients.url)
    try:
        registered = mlflow.genai.load_prompt("prompts:/team-demo.translate/1")
    finally:
        mlflow.set_tracking_uri("")
    assert registered.template == [m.model_dump() for m in pack.predictor("translate").messages]


# ---- evaluate --------------------------------------------------------------------------------


def test_evaluate_of_a_server_run_lands_on_the_server_linked_to_it(
    evaluation, demo_run, clients, mlflow_team_server: TeamServer
) -> None:
    run, output = evaluation
    n = int(demo_run.data.params["data.eval_size"])
    assert f"runtime requests identical to DSPy's: {n}/{n}" in output
    assert run.data.tags["liftdspy.role"] == "evaluation"
    assert run.data.tags["liftdspy.source_run_id"] == demo_run.info.run_id
    experiment = clients.client().get_experiment(run.info.experiment_id)
    assert experiment.name == "liftdspy-evaluate"
    # The same program on the same examples, replayed: the demo run's optimized score.
    assert run.data.metrics["eval_score"] == pytest.approx(demo_run.data.metrics["optimized_score"])
    assert run.data.metrics["runtime_identical_requests"] == n
    assert run.data.metrics["runtime_minus_dspy"] == 0.0
    # Its report went through the artifact proxy to the server's artifact root.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = list(mlflow_team_server.artifacts.rglob(f"{run.info.run_id}/artifacts/reports/*"))
    assert {p.name for p in stored} >= {"evaluation.json", "runtime.json"}
    report = json.loads(next(p for p in stored if p.name == "evaluation.json").read_text())
    assert report["n"] == n


# ---- studies ---------------------------------------------------------------------------------


def test_study_on_the_server_reports_the_recorded_figures(
    study, clients, mlflow_team_server: TeamServer
) -> None:
    figures, report_dir = study
    expected = json.loads(FIGURES.read_text())
    assert figures["n_examples"] == expected["n_examples"]
    assert figures["seeds"] == expected["seeds"]
    cells = [c["cell"] for c in figures["cells"]]
    ids = [
        f"{c['arm']}/seed={'any' if c['seed'] is None else c['seed']}/lm={c['lm']}" for c in cells
    ]
    assert sorted(ids) == expected["cells"]
    assert figures["rows"] == expected["rows"]
    assert {c["arm"]: c["requests"] for c in figures["costs"]} == expected["requests"]
    assert figures["parity"]["identical_requests"] == figures["parity"]["requests"]
    assert "random-demos" in (report_dir / "index.html").read_text()
    # The report was logged to the study run on the server, through the proxy.
    client = clients.client()
    experiment = client.get_experiment_by_name("liftdspy-study-demo")
    (parent,) = client.search_runs(
        [experiment.experiment_id], "tags.`liftdspy.role` = 'study'", max_results=10
    )
    listed = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert "report/index.html" in listed
    assert any(mlflow_team_server.artifacts.rglob(f"{parent.info.run_id}/artifacts/report/*"))


# ---- what the server stores ------------------------------------------------------------------


def _pg_dump(postgres: PostgresServer) -> str:
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    done = subprocess.run(
        [
            str(bin_dir / "pg_dump"),
            "-h",
            postgres.host,
            "-p",
            str(postgres.port),
            "-U",
            postgres.user,
            postgres.database,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PGPASSWORD": postgres.password},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_password_is_nowhere_the_server_stores(
    postgres_server: PostgresServer,
    mlflow_team_server: TeamServer,
    clients: Clients,
    demo_run,
    export_dir: Path,
    evaluation,
    study,
) -> None:
    dump = _pg_dump(postgres_server)
    evaluation_run, _ = evaluation
    # The dump holds what the clients wrote: runs, params, tags, the registered prompts.
    for present in (demo_run.info.run_id, evaluation_run.info.run_id, "team-demo.translate"):
        assert present in dump
    # MLflow's user store sits in the same database: the users, with salted password hashes.
    users = dump.split("COPY public.users ", 1)[1].split("\\.", 1)[0]
    assert EDITOR_USER in users and "admin" in users and "reader" in users
    assert re.search(r"(scrypt|pbkdf2):", users)
    secrets = SECRETS  # EDITOR_PASSWORD, in the clients' tracking URI, among them
    assert [s for s in secrets if s in dump] == []
    files = [p for p in mlflow_team_server.artifacts.rglob("*") if p.is_file()]
    assert len(files) > 20
    leaked = [
        str(path.relative_to(mlflow_team_server.artifacts))
        for path in files
        for secret in secrets
        if secret.encode() in path.read_bytes()
    ]
    assert leaked == []
    for path in [mlflow_team_server.log, *clients.logs.iterdir(), *export_dir.rglob("*.json")]:
        text = path.read_text(errors="replace")
        assert [s for s in secrets if s in text] == [], path
    for output in mlflow_team_server.admin_outputs:
        assert [s for s in secrets if s in output] == []


# ---- liftdspy ui ---------------------------------------------------------------------------


@pytest.mark.browser
def test_liftdspy_ui_on_the_server_shows_its_runs(clients: Clients, demo_run, tmp_path) -> None:
    from test_mlflow_ui import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS

    chromium = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    output = clients.run("ui", "ui", timeout=120)  # MLFLOW_TRACKING_URI: the team server
    found = re.search(r"MLflow UI: (http://\S+)", output)
    assert found, output
    assert found.group(1) == clients.url.replace("://", "://<redacted>@")
    assert EDITOR_PASSWORD not in output
    name = demo_run.info.run_name
    screenshot = tmp_path / "team-ui-run.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            # The server asks the browser for basic auth: the clients' user logs in.
            page = browser.new_page(
                viewport={"width": 1400, "height": 1600},
                http_credentials={"username": EDITOR_USER, "password": EDITOR_PASSWORD},
            )
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(clients.url + "/", wait_until="load")
            page.get_by_text("Model training", exact=True).first.click()
            page.get_by_role("link", name="Experiments").first.click()
            page.get_by_text(DEMO_EXPERIMENT, exact=True).first.click()
            page.get_by_text(name, exact=True).first.click()
            page.wait_for_url(f"**/runs/{demo_run.info.run_id}**")
            page.get_by_text("optimized_score", exact=True).first.wait_for()
            # The artifacts tab reads through the server's artifact proxy.
            page.get_by_role("tab", name="Artifacts").first.click()
            page.get_by_text("program", exact=True).first.click()
            page.get_by_text("program.json", exact=True).first.click()
            page.get_by_text("translate", exact=False).first.wait_for()
            page.get_by_text(
                f"mlflow-artifacts:/{demo_run.info.experiment_id}/", exact=False
            ).first.wait_for()
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
