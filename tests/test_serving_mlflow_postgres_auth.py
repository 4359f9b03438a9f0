"""`liftdspy server` lets only its users in: MLflow's basic auth on the real PostgreSQL server.

The session's `mlflow_team_server` (fixtures_postgres.py) runs with an admin (password from
`LIFTDSPY_SERVER_ADMIN_PASSWORD`) and two users added with `liftdspy server user add`: `editor`
and `reader`, who has only the server's default permission (READ). Here: a request without
credentials is refused (401), the reader cannot log a run in an experiment (403), the admin grants
the editor EDIT with `liftdspy server grant` and the editor then logs with MLflow's own client
from `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`, a non-admin cannot grant, and the
basic-auth ini holding the admin password is 0600 in a private directory. The first tests need
no server: how the command is built and what it refuses.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fixtures_postgres import (
    ADMIN_PASSWORD,
    ADMIN_PASSWORD_ENV,
    DB_PASSWORD,
    EDITOR_PASSWORD,
    EDITOR_USER,
    PASSWORD_ENV,
    READER_PASSWORD,
    READER_USER,
    SECRETS,
    PostgresServer,
    TeamServer,
    cli_log_text,
    logged_in_as,
    server_admin,
    start_team_server,
    stop_team_server,
    team_env,
    wait_for_health,
)

from liftdspy.serving.mlflow_auth import ServerAuthConfig, ServerAuthError, auth_ini
from liftdspy.serving.mlflow_server import (
    TrackingServerConfig,
    build_mlflow_server,
    prepared_server,
)

ROOT = Path(__file__).resolve().parents[1]
URI = "postgresql://mlflow@db.internal:5432/mlflow"
SHARED = "team-auth-shared"  # the experiment the admin grants on


# ---- the command and its config file (no server) ---------------------------------------------


def test_the_server_runs_basic_auth_with_the_admin_password_only_in_a_private_ini(tmp_path) -> None:
    config = TrackingServerConfig(backend_store_uri=URI, artifacts_destination=tmp_path)
    # A password with configparser's interpolation character survives the round trip.
    admin_password = "adm%n-pw-7f3e9c2a"
    environ = {
        "LIFTDSPY_DB_PASSWORD": "db-pw-1",
        ADMIN_PASSWORD_ENV: admin_password,
        "MLFLOW_AUTH_ADMIN_PASSWORD": "would-override-the-ini",
        "TMPDIR": str(tmp_path),
    }
    with prepared_server(config, environ) as command:
        argv = list(command.argv)
        assert argv[argv.index("--app-name") + 1] == "basic-auth"
        env = command.environment(environ)
        # Neither the admin password's variable nor MLflow's override reaches the server.
        assert ADMIN_PASSWORD_ENV not in env and "MLFLOW_AUTH_ADMIN_PASSWORD" not in env
        assert admin_password not in " ".join(argv) + repr(command) + json.dumps(env)
        ini = Path(env["MLFLOW_AUTH_CONFIG_PATH"])
        assert stat.S_IMODE(ini.stat().st_mode) == 0o600
        assert stat.S_IMODE(ini.parent.stat().st_mode) == 0o700
        assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"]
        # MLflow's own reader sees exactly our settings.
        from mlflow.server.auth.config import read_auth_config

        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(ini))
            patch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
            patch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
            read = read_auth_config()
        assert read.admin_username == "admin" and read.admin_password == admin_password
        assert read.default_permission == "READ"
        assert read.auth_cache_ttl_seconds == 60
        assert read.database_uri == URI  # the tracking database; libpq reads PGPASSWORD
    assert not ini.parent.exists()  # deleted with the server


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password1234", "old default admin password"),
        ("short-pw", "shorter than 12"),
        ("", "empty or unset"),
    ],
)
def test_a_weak_or_missing_admin_password_is_refused(tmp_path, password, message) -> None:
    config = TrackingServerConfig(backend_store_uri=URI, artifacts_destination=tmp_path)
    environ = {"LIFTDSPY_DB_PASSWORD": "db-pw-1", ADMIN_PASSWORD_ENV: password}
    with pytest.raises(ServerAuthError, match=message) as caught:
        build_mlflow_server(config, environ)
    assert ADMIN_PASSWORD_ENV in str(caught.value)
    assert not password or password not in str(caught.value)


def test_the_admin_password_file_and_its_refusals(tmp_path) -> None:
    secret_file = tmp_path / "admin.pw"
    secret_file.write_text("from-a-file-pw-77\n")
    auth = ServerAuthConfig(admin_password_file=secret_file)
    assert auth.admin_password({}) == "from-a-file-pw-77"
    assert str(secret_file) in auth.describe() and "from-a-file" not in auth.describe()
    with pytest.raises(ServerAuthError, match="whitespace"):
        auth_ini(auth, URI, " padded-password-1 ")
    with pytest.raises(ServerAuthError, match="cannot read"):
        ServerAuthConfig(admin_password_file=tmp_path / "missing").admin_password({})


def test_the_admin_identity_is_set_for_one_operation_and_never_shown(monkeypatch) -> None:
    from liftdspy.serving.mlflow_users import Credentials, as_user

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "researcher")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    admin = Credentials("admin", "admin-secret-99")
    with as_user(admin):
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "admin"
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "admin-secret-99"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "researcher"
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ
    assert "admin-secret-99" not in repr(admin) + str(admin)


def test_the_credential_variables_count_as_secrets() -> None:
    from liftdspy.redaction import is_secret_key, redact_data, redact_url
    from liftdspy.studies.executors import FORWARDED_ENV

    for name in ("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD_ENV, "MLFLOW_TRACKING_TOKEN"):
        assert is_secret_key(name)
    assert not is_secret_key("MLFLOW_TRACKING_USERNAME")
    assert redact_data({"MLFLOW_TRACKING_PASSWORD": "pw-1"}) == {
        "MLFLOW_TRACKING_PASSWORD": "<redacted>"
    }
    assert redact_url("http://alice:pw-1@h:5000/x") == "http://<redacted>@h:5000/x"
    # Ray workers log in as the user who started the study.
    assert {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= set(FORWARDED_ENV)


def test_no_auth_is_refused_beyond_loopback(tmp_path) -> None:
    TrackingServerConfig(backend_store_uri=URI, artifacts_destination=tmp_path, auth=None)
    with pytest.raises(ValueError, match="loopback"):
        TrackingServerConfig(
            backend_store_uri=URI, artifacts_destination=tmp_path, host="0.0.0.0", auth=None
        )


def test_the_cli_refuses_mlflows_default_admin_password_before_starting(tmp_path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "liftdspy.cli",
            "server",
            "--backend-store-uri",
            URI,
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **team_env(None),
            "LIFTDSPY_DB_PASSWORD": "db-pw-1",
            ADMIN_PASSWORD_ENV: "password1234",
        },
    )
    assert done.returncode == 2
    assert "old default admin password" in done.stderr and ADMIN_PASSWORD_ENV in done.stderr
    assert "password1234" not in done.stdout + done.stderr
    assert not (tmp_path / "artifacts").exists()  # nothing started


def test_no_command_takes_a_password_as_an_option() -> None:
    import typer.main

    from liftdspy.cli import server_cmd

    group = typer.main.get_command(server_cmd.app)
    commands = {"server": group, **group.commands, **group.commands["user"].commands}
    password_options = {
        option
        for command in commands.values()
        for param in command.params
        for option in param.opts
        if "password" in option
    }
    # Only where to read one: a file or the NAME of an environment variable.
    assert password_options == {
        "--password-env",
        "--admin-password-env",
        "--admin-password-file",
        "--password-file",
    }
    assert {"add", "password"} <= set(group.commands["user"].commands)


# ---- the real server ---------------------------------------------------------------------------


def _post(url: str, path: str, body: dict, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def shared_experiment(mlflow_team_server: TeamServer) -> str:
    """`liftdspy server grant editor team-auth-shared --permission EDIT --create`, as the admin."""
    done = server_admin(
        mlflow_team_server.url, "grant", EDITOR_USER, SHARED, "--permission", "EDIT", "--create"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    mlflow_team_server.admin_outputs.append(done.stdout + done.stderr)
    assert f"{EDITOR_USER}: EDIT on experiment '{SHARED}'" in done.stderr
    from mlflow.tracking import MlflowClient

    with logged_in_as("admin"):
        return MlflowClient(mlflow_team_server.url).get_experiment_by_name(SHARED).experiment_id


@pytest.mark.slow
def test_without_credentials_every_request_but_health_is_refused(
    mlflow_team_server: TeamServer,
) -> None:
    url = mlflow_team_server.url
    assert _post(url, "/api/2.0/mlflow/experiments/create", {"name": "anonymous"}) == 401
    assert _post(url, "/api/2.0/mlflow/experiments/search", {"max_results": 1}) == 401
    wrong = (EDITOR_USER, "not-the-password-1")
    assert _post(url, "/api/2.0/mlflow/experiments/create", {"name": "wrong"}, wrong) == 401
    with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
        assert response.status == 200  # readiness probes need no account
    # MLflow's own client, with no credentials in the environment: refused the same way.
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        patch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        with pytest.raises(MlflowException) as caught:
            MlflowClient(url).create_experiment("anonymous-client")
    assert caught.value.get_http_status_code() == 401


@pytest.mark.slow
def test_a_reader_cannot_log_a_run_and_an_editor_granted_by_the_admin_can(
    mlflow_team_server: TeamServer, shared_experiment: str
) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_team_server.url)
    # The editor logs through MLflow's client from MLFLOW_TRACKING_USERNAME/_PASSWORD alone.
    with logged_in_as(EDITOR_USER):
        run = client.create_run(shared_experiment, run_name="editor-run")
        client.log_metric(run.info.run_id, "score", 0.75)
        client.set_terminated(run.info.run_id)
    with logged_in_as(READER_USER):
        # READ: the reader sees the experiment and the editor's run ...
        (seen,) = client.search_runs([shared_experiment])
        assert seen.data.metrics == {"score": 0.75}
        # ... but can neither start a run in it nor write to the editor's run.
        with pytest.raises(MlflowException) as caught:
            client.create_run(shared_experiment, run_name="reader-run")
        assert caught.value.get_http_status_code() == 403
        with pytest.raises(MlflowException) as caught:
            client.log_metric(run.info.run_id, "score", 0.0)
        assert caught.value.get_http_status_code() == 403
        # MLflow's rule without workspaces: any user may create an experiment, and manages it.
        own = client.create_experiment("reader-own")
        client.log_metric(client.create_run(own).info.run_id, "mine", 1.0)
    reader = (READER_USER, READER_PASSWORD)
    body = {"experiment_id": shared_experiment, "run_name": "raw"}
    assert _post(mlflow_team_server.url, "/api/2.0/mlflow/runs/create", body, reader) == 403
    with logged_in_as(EDITOR_USER):
        assert len(client.search_runs([shared_experiment])) == 1  # only the editor's run


@pytest.mark.slow
def test_only_the_admin_grants(mlflow_team_server: TeamServer, shared_experiment: str) -> None:
    # The editor (no admin) cannot grant the reader anything, even with the right syntax.
    as_editor = team_env(None, **{ADMIN_PASSWORD_ENV: EDITOR_PASSWORD})
    done = server_admin(
        mlflow_team_server.url,
        "grant",
        READER_USER,
        SHARED,
        "--permission",
        "EDIT",
        "--admin-username",
        EDITOR_USER,
        env=as_editor,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "403" in output or "not an admin" in output, output
    # A wrong admin password is a clear 401, naming where the password comes from.
    wrong = team_env(None, **{ADMIN_PASSWORD_ENV: "not-the-admin-pw-1"})
    done = server_admin(
        mlflow_team_server.url, "grant", READER_USER, SHARED, "--permission", "READ", env=wrong
    )
    assert done.returncode == 1
    assert "401" in done.stderr and "LIFTDSPY_SERVER_ADMIN_PASSWORD" in done.stderr
    # An unknown experiment without --create is named.
    done = server_admin(
        mlflow_team_server.url, "grant", READER_USER, "no-such-exp", "--permission", "READ"
    )
    assert done.returncode == 1 and "no experiment named 'no-such-exp'" in done.stderr
    for text in (output, done.stdout, done.stderr):
        assert [s for s in SECRETS if s in text] == []


@pytest.mark.slow
def test_the_running_servers_ini_is_private_and_nothing_else_holds_a_password(
    mlflow_team_server: TeamServer,
) -> None:
    (ini,) = mlflow_team_server.tmp.glob("liftdspy-server-auth-*/basic_auth.ini")
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600
    assert stat.S_IMODE(ini.parent.stat().st_mode) == 0o700
    parser = configparser.ConfigParser()
    parser.read(ini)
    assert parser["mlflow"]["admin_password"] == ADMIN_PASSWORD
    assert parser["mlflow"]["default_permission"] == "READ"
    assert DB_PASSWORD not in ini.read_text()  # the user store's URI has none: PGPASSWORD
    # The server's processes: no password on a command line; the admin password in no
    # environment (it travels in the ini only), the database password only as PGPASSWORD.
    pids = subprocess.run(
        ["pgrep", "-g", str(os.getpgid(mlflow_team_server.process.pid))],
        capture_output=True,
        text=True,
    ).stdout.split()
    checked = 0
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        checked += 1
        assert [s for s in SECRETS if s.encode() in cmdline] == []
        if b"mlflow" in cmdline and b"liftdspy.cli" not in cmdline:
            assert not [e for e in environ if ADMIN_PASSWORD.encode() in e]
            assert [e for e in environ if DB_PASSWORD.encode() in e] == [
                b"PGPASSWORD=" + DB_PASSWORD.encode()
            ]
            assert not [e for e in environ if e.startswith(PASSWORD_ENV.encode() + b"=")]
    assert checked >= 2
    log = mlflow_team_server.log.read_text(errors="replace")
    words = " ".join(log.split())  # rich wraps the lines
    assert f"basic auth: admin 'admin' (password from ${ADMIN_PASSWORD_ENV})" in words
    assert "users get READ on experiments nobody granted them" in words
    assert [s for s in SECRETS if s in log] == []


@pytest.mark.slow
def test_a_restart_with_another_admin_password_warns_and_keeps_the_stored_one(
    postgres_server: PostgresServer, mlflow_team_server: TeamServer, tmp_path
) -> None:
    """MLflow reads the admin password only to create the admin user: a second server on the same
    user store with another password says so, and the stored password still logs in."""
    other = "another-admin-pw-31f6"
    process, url, log = start_team_server(postgres_server, tmp_path, admin_password=other)
    try:
        wait_for_health(url, process, log)
        deadline = time.monotonic() + 120
        # printed after the admin check (rich wraps the lines)
        while "clients log in with" not in " ".join(log.read_text().split()):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        from liftdspy.serving.mlflow_auth import login_accepted

        assert login_accepted(url, "admin", ADMIN_PASSWORD)
        assert not login_accepted(url, "admin", other)
    finally:
        stop_team_server(process)
    words = " ".join(log.read_text(errors="replace").split())
    assert "warning: the server refused 'admin' with the password from" in words
    assert "$LIFTDSPY_SERVER_ADMIN_PASSWORD" in words and other not in words
    assert [s for s in SECRETS if s in words] == []
    cli_log = cli_log_text(tmp_path)
    assert other not in cli_log and [s for s in SECRETS if s in cli_log] == []
    assert list((tmp_path / "tmp").iterdir()) == []  # the ini went with the server
