"""Where MLflow writes: configure_tracking races, and one artifacts folder for runs and the UI."""

from __future__ import annotations

import mlflow

from liftdspy.tracking.store import configure_tracking


def test_an_experiment_created_concurrently_is_reused_not_an_error(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    existing = mlflow.create_experiment("shared")  # the other process won the race
    real_lookup = mlflow.get_experiment_by_name
    calls = []

    def lookup_before_the_other_process_committed(name):
        calls.append(name)
        return None if len(calls) == 1 else real_lookup(name)

    monkeypatch.setattr(mlflow, "get_experiment_by_name", lookup_before_the_other_process_committed)
    assert configure_tracking(uri, "shared") == existing
    assert len(calls) == 2


def test_runs_and_the_ui_put_artifacts_in_the_same_folder(tmp_path):
    # One helper (artifacts_dir): the UI used to follow a symlinked database to its target's
    # folder while runs wrote beside the link, so the UI served an empty artifact store.
    from liftdspy.cli.ui_cmd import mlflow_server_command
    from liftdspy.tracking import artifacts_dir, sqlite_path

    (tmp_path / "real").mkdir()
    (tmp_path / "project").mkdir()
    (tmp_path / "real" / "mlflow.db").touch()
    (tmp_path / "project" / "mlflow.db").symlink_to(tmp_path / "real" / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'project' / 'mlflow.db'}"
    expected = (tmp_path / "project" / "mlartifacts").resolve()
    assert sqlite_path(uri) == tmp_path / "project" / "mlflow.db"
    assert sqlite_path("postgresql://db/mlflow") is None
    assert artifacts_dir(uri) == expected

    experiment_id = configure_tracking(uri, "artifacts")
    location = mlflow.get_experiment(experiment_id).artifact_location
    assert location == expected.as_uri()
    command = mlflow_server_command(uri, "127.0.0.1", 5123, 1)
    assert command[command.index("--artifacts-destination") + 1] == str(expected)
