"""A real PostgreSQL server for the tracking-server tests, and the team MLflow server on top of it.

`postgres_server` (session): Debian's `postgresql` binaries (`initdb`, `pg_ctl`), a cluster in a
temp dir with password authentication (scram-sha-256) on 127.0.0.1 and a free port, stopped at
the end. PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres`
user and every command runs through `runuser -u postgres`. Missing binaries skip the tests with
the reason, except under CI=true, where they fail (`.ci/run` installs the package).

`mlflow_team_server` (session): `liftdspy server` itself (the CLI, as a subprocess) on that
database, with the database and admin passwords in the environment, running MLflow's basic auth
(user store in the same database). Two users are added with `liftdspy server user add`: `editor`
(the clients' identity: it creates the tests' experiments, so it manages them) and `reader`
(the server's default permission only: READ). `team_env` is the environment of a client shell
logged in as one of them (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`), and
`logged_in_as` sets it for the test process's own MLflow clients.

Both are registered in conftest.py, so each starts once per session for every module using them
(test_serving_mlflow_postgres.py, test_serving_mlflow_postgres_clients.py); a module that
imported the fixtures itself would get its own instances.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fixtures_server import free_port

DB_USER = "liftdspy"
DB_NAME = "mlflow"
DB_PASSWORD = "pg-secret-5f1c9a7e3b"  # test-only; the tests check it never leaks
PASSWORD_ENV = "LIFTDSPY_TEST_DB_PASSWORD"
ROOT = Path(__file__).resolve().parents[1]
# Test-only credentials of the server's users; the tests check none of them leaks.
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-pw-0c4e8a1f6b2d"
ADMIN_PASSWORD_ENV = "LIFTDSPY_SERVER_ADMIN_PASSWORD"
EDITOR_USER = "editor"
EDITOR_PASSWORD = "editor-pw-93d7b5e2c8a1"
READER_USER = "reader"
READER_PASSWORD = "reader-pw-5a2f9c7e1d3b"
USER_PASSWORDS = {
    ADMIN_USER: ADMIN_PASSWORD,
    EDITOR_USER: EDITOR_PASSWORD,
    READER_USER: READER_PASSWORD,
}
SECRETS = (DB_PASSWORD, ADMIN_PASSWORD, EDITOR_PASSWORD, READER_PASSWORD)


def missing(reason: str) -> None:
    """Fail under CI (something the test needs was not installed), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
    pytest.skip(reason)


def postgres_bin_dir() -> Path | None:
    """Directory holding initdb/pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    database: str
    password: str

    @property
    def uri(self) -> str:
        """Backend store URI WITHOUT the password (it travels in the environment)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL is not installed (apt-get install postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing("running as root needs runuser to start PostgreSQL as the postgres user")
    base = tmp_path_factory.mktemp("postgres")
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    pwfile = base / "pwfile"
    pwfile.write_text(DB_PASSWORD + "\n")
    if os.geteuid() == 0:
        # The temp dir is root's; postgres needs to reach and own its own folders.
        for path in (base, *base.parents):
            if str(path) in ("/", "/tmp"):
                break
            os.chmod(path, os.stat(path).st_mode | 0o711)
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
        shutil.chown(pwfile, "postgres")
    port = free_port()
    run = lambda argv: subprocess.run(  # noqa: E731
        _as_owner(argv), check=True, capture_output=True, text=True, timeout=120
    )
    run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            DB_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        ]
    )
    log = base / "postgres.log"
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -k {sockets} -c fsync=off"
    run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
    try:
        env = {**os.environ, "PGPASSWORD": DB_PASSWORD}
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER, DB_NAME],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        yield PostgresServer("127.0.0.1", port, DB_USER, DB_NAME, DB_PASSWORD)
    finally:
        subprocess.run(
            _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=120,
        )


@dataclass
class TeamServer:
    url: str
    process: subprocess.Popen
    log: Path
    artifacts: Path
    tmp: Path  # the server's TMPDIR: where its basic-auth ini lives while it runs
    # what `liftdspy server user add` printed while setting the users up
    admin_outputs: list[str] = field(default_factory=list)


def team_env(user: str | None, **extra: str) -> dict[str, str]:
    """A client shell's environment: logged in as `user` (None: no credentials at all)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        env.pop(name, None)
    if user is not None:
        env["MLFLOW_TRACKING_USERNAME"] = user
        env["MLFLOW_TRACKING_PASSWORD"] = USER_PASSWORDS[user]
    return env


@contextlib.contextmanager
def logged_in_as(user: str) -> Iterator[None]:
    """This process's MLflow clients authenticate as `user` inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", user)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", USER_PASSWORDS[user])
        yield


def start_team_server(
    postgres: PostgresServer,
    base: Path,
    *,
    password: str = DB_PASSWORD,
    admin_password: str = ADMIN_PASSWORD,
    extra_args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen, str, Path]:
    """`liftdspy server` on `postgres` (a subprocess); returns (process, url, log path). Its
    TMPDIR is `base/tmp`; the CLI's own log files go to `base/cli-logs` (see `cli_log_text`)."""
    port = free_port()
    log = base / f"mlflow-server-{port}.log"
    tmp = base / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {
        **os.environ,
        PASSWORD_ENV: password,
        ADMIN_PASSWORD_ENV: admin_password,
        "PYTHONPATH": str(ROOT),
        "PGPASSWORD": "",  # only --password-env may supply it
        "TMPDIR": str(tmp),
        # The CLI's own log file (quiet by default) goes beside the server log, not in TMPDIR,
        # so the tests can see that TMPDIR is left empty.
        "LIFTDSPY_LOG_DIR": str(base / "cli-logs"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "liftdspy.cli",
                "server",
                "--backend-store-uri",
                postgres.uri,
                "--artifacts-destination",
                str(base / "artifacts"),
                "--port",
                str(port),
                "--workers",
                "2",
                "--password-env",
                PASSWORD_ENV,
                *extra_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}", log


def wait_for_health(url: str, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"liftdspy server exited ({process.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    pytest.fail(f"liftdspy server did not answer in {timeout}s:\n{log.read_text()[-3000:]}")


def stop_team_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # the CLI stops its mlflow child on SIGTERM
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=30)


def server_admin(url: str, *args: str, env: dict[str, str] | None = None):
    """`liftdspy server ARGS --tracking-uri URL` as the admin (password in its environment)."""
    return subprocess.run(
        [sys.executable, "-m", "liftdspy.cli", "server", *args, "--tracking-uri", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=team_env(None, **{ADMIN_PASSWORD_ENV: ADMIN_PASSWORD}) if env is None else env,
    )


@pytest.fixture(scope="session")
def mlflow_team_server(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TeamServer]:
    base = tmp_path_factory.mktemp("team-mlflow")
    process, url, log = start_team_server(postgres_server, base)
    try:
        wait_for_health(url, process, log)
        server = TeamServer(url, process, log, base / "artifacts", base / "tmp")
        for user in (EDITOR_USER, READER_USER):
            env = team_env(
                None, **{ADMIN_PASSWORD_ENV: ADMIN_PASSWORD, "LIFTDSPY_USER_PASSWORD": ""}
            )
            password_file = base / f"{user}.password"
            password_file.write_text(USER_PASSWORDS[user] + "\n")
            done = server_admin(
                url, "user", "add", user, "--password-file", str(password_file), env=env
            )
            password_file.unlink()
            server.admin_outputs.append(done.stdout + done.stderr)
            assert done.returncode == 0, done.stdout + done.stderr
        yield server
    finally:
        stop_team_server(process)


def cli_log_text(base: Path) -> str:
    """Everything the CLI wrote to its own log files for a server started on `base`."""
    folder = base / "cli-logs"
    if not folder.is_dir():
        return ""
    return "\n".join(f.read_text(errors="replace") for f in sorted(folder.iterdir()))
