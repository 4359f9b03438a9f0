"""A study's figures are metrics on its MLflow study run, and its cells are tagged by arm and seed
(a real SQLite MLflow store; the LM is test_studies.py's scripted `FunctionEngine`)."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from test_studies import ROOT, scripted_factory, write_study

from liftdspy.studies import load_study
from liftdspy.studies.executors import InProcessExecutor
from liftdspy.studies.report import build_report, write_report
from liftdspy.studies.runner import prepare_study, run_study
from liftdspy.tracking.layout import arm_metric


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    yield
    mlflow.end_run()


def test_the_study_run_holds_every_arms_figures_as_metrics(tmp_path):
    config = load_study(write_study(tmp_path))
    outcome = run_study(prepare_study(config), InProcessExecutor(scripted_factory))
    report = build_report(config.tracking.uri, "logic")
    write_report(report, tmp_path / "out", log_to_run=True)

    client = MlflowClient(tracking_uri=config.tracking.uri)
    metrics = client.get_run(outcome.parent_run_id).data.metrics
    rows = {r.arm: r for r in report.rows}
    for arm in ("zero-shot", "random-demos", "labeled"):
        assert metrics[f"arm.{arm}.score"] == pytest.approx(rows[arm].mean)
        assert metrics[f"arm.{arm}.score_ci_low"] == pytest.approx(rows[arm].low)
        assert metrics[f"arm.{arm}.score_ci_high"] == pytest.approx(rows[arm].high)
    for arm in ("zero-shot", "labeled"):
        row = rows[arm]
        assert metrics[f"arm.{arm}.gain"] == pytest.approx(row.gain)
        assert metrics[f"arm.{arm}.ci_low"] == pytest.approx(row.gain_low)
        assert metrics[f"arm.{arm}.ci_high"] == pytest.approx(row.gain_high)
        assert metrics[f"arm.{arm}.p_holm"] == pytest.approx(row.p_holm)
        assert metrics[f"arm.{arm}.p"] == pytest.approx(row.p_value)
    assert "arm.random-demos.gain" not in metrics  # the baseline has no gain over itself
    assert metrics["study.n_examples"] == 4 and metrics["study.n_seeds"] == 2

    # The UI can rank studies by a metric: search the runs ordered by an arm's gain.
    found = client.search_runs(
        [client.get_run(outcome.parent_run_id).info.experiment_id],
        "metrics.`arm.labeled.gain` > -2",
        order_by=["metrics.`arm.labeled.gain` DESC"],
    )
    assert [r.info.run_id for r in found] == [outcome.parent_run_id]

    cells = client.search_runs(
        [found[0].info.experiment_id], f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'"
    )
    tagged = sorted(
        (c.data.tags["liftdspy.study.arm"], c.data.tags["liftdspy.study.seed"]) for c in cells
    )
    assert tagged == [
        ("labeled", "1"),
        ("labeled", "2"),
        ("random-demos", "1"),
        ("random-demos", "2"),
        ("zero-shot", "any"),
    ]


def test_arm_names_become_valid_metric_names():
    assert arm_metric("mipro-small", "gain") == "arm.mipro-small.gain"
    assert arm_metric("mipro@big", "score") == "arm.mipro_big.score"
