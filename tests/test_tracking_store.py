"""configure_tracking when another process creates the experiment between lookup and create."""

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
