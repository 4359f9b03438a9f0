"""`liftdspy server`: the team MLflow tracking server on a real PostgreSQL database.

`fixtures_postgres` starts PostgreSQL (initdb in a temp dir, scram-sha-256 passwords, a free port
on 127.0.0.1) and `liftdspy server` on it. The demo experiment is replayed offline from its
committed recording by two `liftdspy run` processes at once against the server, logged in as
the `editor` user (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`); both runs land and
`liftdspy compare` reads them back. The database and user passwords are given only through the
environment and must not appear in any output, command line or run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_postgres import (
    EDITOR_USER,
    SECRETS,
    PostgresServer,
    TeamServer,
    cli_log_text,
    logged_in_as,
    start_team_server,
    stop_team_server,
    team_env,
)

from liftdspy.lm.store import RecordingStore, ensure_imported
from liftdspy.serving.mlflow_server import (
    TrackingServerConfig,
    TrackingServerError,
    build_mlflow_server,
    redact_db_uri,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo.yaml"
RECORDING = ROOT / "cache" / "recordings" / "demo.jsonl"


# ---- the command line (no server) ------------------------------------------------------------


def test_the_password_travels_as_pgpassword_never_on_the_command_line(tmp_path) -> None:
    config = TrackingServerConfig(
        backend_store_uri="postgresql://mlflow@db.internal:5432/mlflow",
        artifacts_destination=tmp_path / "artifacts",
        password_env="TEAM_DB_PASSWORD",
    )
    environ = {
        "TEAM_DB_PASSWORD": "s3cret-pw",
        "LIFTDSPY_SERVER_ADMIN_PASSWORD": "admin-pw-1234567",
    }
    command = build_mlflow_server(config, environ)
    assert command.env["PGPASSWORD"] == "s3cret-pw"
    for secret in environ.values():
        assert secret not in " ".join(command.argv) and secret not in repr(command)
    # The server inherits neither variable: the password travels as PGPASSWORD only.
    assert set(command.environment(environ)) == {*command.env}
    argv = command.argv
    assert argv[argv.index("--backend-store-uri") + 1] == config.backend_store_uri
    assert argv[argv.index("--host") + 1] == "127.0.0.1"  # local unless asked
    assert argv[argv.index("--artifacts-destination") + 1] == str(tmp_path / "artifacts")


def test_bad_settings_are_refused_by_name(tmp_path) -> None:
    with pytest.raises(ValueError, match="carries a password") as caught:
        TrackingServerConfig(
            backend_store_uri="postgresql://mlflow:hunter2@db:5432/mlflow",
            artifacts_destination=tmp_path,
        )
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="postgresql://"):
        TrackingServerConfig(backend_store_uri="sqlite:///x.db", artifacts_destination=tmp_path)
    with pytest.raises(ValueError, match="names no database"):
        TrackingServerConfig(
            backend_store_uri="postgresql://u@db:5432", artifacts_destination=tmp_path
        )
    config = TrackingServerConfig(
        backend_store_uri="postgresql://u@db/mlflow", artifacts_destination=tmp_path
    )
    with pytest.raises(TrackingServerError, match="LIFTDSPY_DB_PASSWORD"):
        build_mlflow_server(config, {})
    assert redact_db_uri("postgresql://u:pw@db:5432/m") == "postgresql://u:***@db:5432/m"


# ---- the real server -------------------------------------------------------------------------


def _run_demo(url: str, store: Path, log: Path) -> subprocess.Popen:
    env = team_env(EDITOR_USER, MLFLOW_TRACKING_URI=url)
    env.pop("LIFTDSPY_RECORDER", None)
    with open(log, "wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "liftdspy.cli",
                "run",
                str(DEMO),
                "--recorder",
                "offline",
                "--set",
                f"lm.recorder.path={store}",
                "--set",
                f"tracking.uri={url}",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


@pytest.mark.slow
@pytest.mark.local
# Two demo replays at once on 2 shared cores, after the session's PostgreSQL and server start
# (this test usually sets them up): 155 s alone, over 300 s in a loaded full-suite run.
@pytest.mark.timeout(900)
def test_two_demo_runs_written_at_once_both_land_and_compare_reads_them(
    mlflow_team_server: TeamServer,
    tmp_path,
) -> None:
    from mlflow.tracking import MlflowClient

    stores = []
    for name in ("a", "b"):  # one store per process, as two researchers' machines would have
        store = tmp_path / f"store-{name}"
        ensure_imported(RECORDING, RecordingStore(store))
        stores.append(store)
    logs = [tmp_path / "run-a.log", tmp_path / "run-b.log"]
    runs = [_run_demo(mlflow_team_server.url, s, log) for s, log in zip(stores, logs, strict=True)]
    for process, log in zip(runs, logs, strict=True):
        assert process.wait(timeout=900) == 0, log.read_text()[-3000:]

    client = MlflowClient(tracking_uri=mlflow_team_server.url)
    with logged_in_as(EDITOR_USER):
        experiment = client.get_experiment_by_name("liftdspy-demo")
        top = client.search_runs(
            [experiment.experiment_id], "attributes.status = 'FINISHED'", max_results=100
        )
        every_run = client.search_runs([experiment.experiment_id], max_results=500)
    parents = [r for r in top if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2
    assert all("optimized_score" in r.data.metrics for r in parents)
    # the two concurrent runs produced the same replayed result
    scores = {r.data.metrics["optimized_score"] for r in parents}
    assert len(scores) == 1

    ids = [r.info.run_id for r in parents]
    done = subprocess.run(
        [sys.executable, "-m", "liftdspy.cli", "compare", *ids, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=team_env(EDITOR_USER, MLFLOW_TRACKING_URI=mlflow_team_server.url),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    comparison = json.loads(done.stdout)
    assert {run["run_id"] for run in comparison["runs"]} == set(ids)

    # Artifacts went to the server's artifact root, on disk.
    assert any(mlflow_team_server.artifacts.rglob("*"))
    # No password reached a run (params, tags), the server's own output or the clients'.
    for run in every_run:
        text = json.dumps({"params": run.data.params, "tags": run.data.tags})
        assert not [s for s in SECRETS if s in text]
    outputs = [mlflow_team_server.log.read_text(errors="replace"), done.stdout + done.stderr]
    outputs += [log.read_text(errors="replace") for log in logs]
    for output in outputs:
        assert not [s for s in SECRETS if s in output]


def test_the_password_is_on_no_command_line_of_the_server_processes(
    mlflow_team_server: TeamServer,
) -> None:
    pids = subprocess.run(
        ["pgrep", "-g", str(os.getpgid(mlflow_team_server.process.pid))],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(pids) >= 2  # the CLI and mlflow's server (plus its workers)
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        assert not [s for s in SECRETS if s.encode() in cmdline]


@pytest.mark.slow
def test_a_wrong_password_is_a_clear_failure(
    postgres_server: PostgresServer,
    tmp_path,
) -> None:
    process, _url, log = start_team_server(postgres_server, tmp_path, password="wrong-password-1")
    try:
        code = process.wait(timeout=300)
    finally:
        stop_team_server(process)
    output = log.read_text(errors="replace")
    assert code == 1
    assert "password" in output and "LIFTDSPY_TEST_DB_PASSWORD" in output
    assert "wrong-password-1" not in output
    assert not [s for s in SECRETS if s in output]
    cli_log = cli_log_text(tmp_path)
    assert "wrong-password-1" not in cli_log and not [s for s in SECRETS if s in cli_log]
    # The basic-auth ini (it holds the admin password) went with the server.
    assert list((tmp_path / "tmp").iterdir()) == []
