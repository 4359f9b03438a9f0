"""Study logic: config errors, plan, leakage guard, cells nested in MLflow, resume, budget,
worker processes. The LM is the test-only `FunctionEngine` answering `study_answer`: an IR that
depends on how many demos the prompt shows, so arms differ; the shipped study's real recordings
are replayed in test_studies_demo.py."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from dspy.lm15 import Request
from fixtures_engines import FunctionEngine, demos_shown, ir_answer
from fixtures_ir import IDENTITY_IR
from mlflow.tracking import MlflowClient

from liftdspy.lm.config import LMConfig
from liftdspy.studies import LeakageError, StudyConfigError, load_study
from liftdspy.studies.executors import (
    InProcessExecutor,
    ProcessPoolCellExecutor,
    ThreadCellExecutor,
)
from liftdspy.studies.runner import prepare_study, run_study

ROOT = Path(__file__).resolve().parents[1]


def study_answer(request: Request, number: int) -> str:
    """The same IR for every NL->IR request, renamed by the number of demos it carries (assistant
    turns), so demo arms score apart."""
    ir = json.loads(json.dumps(IDENTITY_IR))
    demos = demos_shown(request)
    if demos:
        ir["signature"]["name"] = f"f{demos}"
    return ir_answer(ir)


ENGINES: list[FunctionEngine] = []


def scripted_factory(config: LMConfig) -> FunctionEngine:
    """Module-level (picklable for worker processes): one engine per LM built. Like the embedded
    engine it takes a JSON-schema response format, so DSPy sends one."""
    engine = FunctionEngine(study_answer, model="scripted-study", usage=(100, 40), structured=True)
    ENGINES.append(engine)
    return engine


def live_calls() -> int:
    return sum(e.calls for e in ENGINES)


def study_data(tmp_path: Path, **overrides) -> dict:
    data = {
        "name": "logic",
        "dataset": {
            "paths": [str(ROOT / "datasets" / "core")],
            "max_train": 6,
            "max_val": 3,
            "max_eval": 4,
        },
        "program": {"name": "nl_to_ir"},
        "lm": {
            "kind": "local",
            "model": "scripted-study",
            "recorder": {"mode": "replay", "path": str(tmp_path / "rec")},
        },
        "arms": [
            {"name": "zero-shot", "fixed": "zero-shot"},
            {"name": "random-demos", "fixed": "random-demos", "k": 2},
            {"name": "labeled", "preset": "labeled-fewshot", "init": {"k": 1}},
        ],
        "seeds": [1, 2],
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "logic"},
    }
    data.update(overrides)
    return data


def write_study(tmp_path: Path, **overrides) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study_data(tmp_path, **overrides)))
    return path


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    ENGINES.clear()
    yield
    mlflow.end_run()


def test_study_runs_every_cell_nested_under_one_study_run(tmp_path):
    config = load_study(write_study(tmp_path))
    prepared = prepare_study(config)
    assert prepared.plan.cells == [
        "zero-shot/seed=any/lm=default",
        "random-demos/seed=1/lm=default",
        "random-demos/seed=2/lm=default",
        "labeled/seed=1/lm=default",
        "labeled/seed=2/lm=default",
    ]
    outcome = run_study(prepared, InProcessExecutor(scripted_factory))
    assert [r.status for r in outcome.results] == ["finished"] * 5
    assert outcome.not_run == []
    # zero-shot 4 + random-demos 2x4 + labeled 2x(4 baseline replayed + 4 optimized; its k=1
    # demo is drawn with the seed, so each seed shows another demo and calls live)
    assert live_calls() == 4 + 8 + 8
    client = MlflowClient(tracking_uri=config.tracking.uri)
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.tags["liftdspy.role"] == "study"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'"
    )
    cells = sorted(c.data.tags["liftdspy.study.cell"] for c in children)
    assert cells == sorted(prepared.plan.cells)
    labeled = next(
        c for c in children if c.data.tags["liftdspy.study.cell"].startswith("labeled/seed=2")
    )
    assert labeled.data.tags["liftdspy.study.seed"] == "2"
    assert labeled.data.params["seed"] == "2"
    demos = {tuple(r.demo_ids[0]) for r in outcome.results if r.cell.arm == "random-demos"}
    assert len(demos) == 2  # the seed draws the demos


def test_rerun_skips_finished_cells_and_makes_no_lm_call(tmp_path):
    path = write_study(tmp_path)
    first = run_study(prepare_study(load_study(path)), InProcessExecutor(scripted_factory))
    before = live_calls()
    again = prepare_study(load_study(path))
    assert again.plan.cells == [] and len(again.plan.skipped) == 5
    outcome = run_study(again, InProcessExecutor(scripted_factory))
    assert outcome.parent_run_id == first.parent_run_id
    assert outcome.results == [] and live_calls() == before


def test_budget_stops_the_study_keeping_finished_cells(tmp_path):
    path = write_study(tmp_path, budget={"max_lm_calls": 6})
    prepared = prepare_study(load_study(path))
    outcome = run_study(prepared, InProcessExecutor(scripted_factory))
    assert live_calls() <= 6
    assert outcome.results[0].status == "finished"  # zero-shot: 4 calls
    assert outcome.results[1].status == "budget"
    assert outcome.stopped_by_budget
    assert "labeled/seed=2/lm=default" in outcome.not_run
    # The finished cell is kept: a re-run without the budget skips it.
    again = prepare_study(load_study(path, ["budget.max_lm_calls=null"]))
    assert again.plan.skipped == ["zero-shot/seed=any/lm=default"]


def test_config_errors_name_the_key_before_any_lm_call(tmp_path):
    with pytest.raises(StudyConfigError, match=r"arms\.1: Value error, give exactly one"):
        load_study(write_study(tmp_path, arms=[{"name": "a", "fixed": "zero-shot"}, {"name": "b"}]))
    with pytest.raises(StudyConfigError, match=r"baseline: 'nope' is not an arm"):
        load_study(write_study(tmp_path), ["baseline=nope"])
    with pytest.raises(StudyConfigError, match=r"seeds.0: Input should be a valid integer"):
        load_study(write_study(tmp_path), ["seeds=[a]"])
    bad_preset = write_study(
        tmp_path,
        arms=[
            {"name": "random-demos", "fixed": "random-demos"},
            {"name": "mipro", "preset": "mipro-small", "compile": {"num_trails": 3}},
        ],
    )
    with pytest.raises(StudyConfigError, match=r"arms\.1 \(mipro\): .*compile.num_trails"):
        prepare_study(load_study(bad_preset))
    assert live_calls() == 0


def test_leakage_guard_fails_before_any_lm_call(tmp_path):
    same_split = write_study(
        tmp_path,
        dataset={"paths": [str(ROOT / "datasets" / "core")], "eval_split": "dev", "max_eval": 3},
    )
    with pytest.raises(StudyConfigError, match=r"eval_split 'dev' is also the val_split"):
        load_study(same_split)
    from liftdspy.datasets import load_tasks
    from liftdspy.studies.leakage import find_leaks

    tasks = load_tasks([ROOT / "datasets" / "core"])
    train = [t for t in tasks if t.split == "train"][:3]
    assert find_leaks(train[:1], {"train": train}, {}) == [
        f"eval example {train[0].id!r} is also in the train split (same id)"
    ]
    assert find_leaks(train[:1], {}, {"random-demos/seed=0": [train[0].id]}) == [
        f"eval example {train[0].id!r} is a demo of random-demos/seed=0"
    ]
    # Same prompt text under another id, differing only in case and spacing.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rows = [
        json.loads(line)
        for line in (ROOT / "datasets/core").glob("*.jsonl").__next__().read_text().splitlines()
        if line.strip()
    ]
    train = next(r for r in rows if r["split"] == "train")
    copy = dict(
        train, id="copied-" + train["id"], split="test", prompt="  " + train["prompt"].upper()
    )
    (data_dir / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in [*rows, copy]) + "\n")
    leaky = write_study(tmp_path, dataset={"paths": [str(data_dir)], "max_train": 50})
    with pytest.raises(LeakageError, match=r"same prompt as train example"):
        prepare_study(load_study(leaky))
    assert live_calls() == 0


@pytest.mark.slow
def test_worker_processes_give_the_same_results_as_in_process(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir(), b.mkdir()
    one = run_study(prepare_study(load_study(write_study(a))), InProcessExecutor(scripted_factory))
    two = run_study(
        prepare_study(load_study(write_study(b))), ProcessPoolCellExecutor(2, scripted_factory)
    )
    by_cell = {r.cell.id: r.scores for r in one.results}
    assert {r.cell.id: r.scores for r in two.results} == by_cell


def test_cells_in_threads_give_the_same_results_as_one_at_a_time(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir(), b.mkdir()
    one = run_study(prepare_study(load_study(write_study(a))), InProcessExecutor(scripted_factory))
    calls_one_at_a_time = live_calls()
    ENGINES.clear()
    three = run_study(
        prepare_study(load_study(write_study(b))), ThreadCellExecutor(3, scripted_factory)
    )
    by_cell = {r.cell.id: r.scores for r in one.results}
    assert all(r.status == "finished" for r in three.results)
    assert {r.cell.id: r.scores for r in three.results} == by_cell
    # The optimizer cells' baselines are the zero-shot cell's requests: one live call each,
    # whether they ran before, after or at the same time as the zero-shot cell.
    assert live_calls() == calls_one_at_a_time
    runs = MlflowClient(tracking_uri=f"sqlite:///{b / 'mlflow.db'}").search_runs(
        [mlflow.get_experiment_by_name("logic").experiment_id]
    )
    cells = [r for r in runs if "liftdspy.study.cell" in r.data.tags]
    assert sorted(r.data.tags["liftdspy.study.cell"] for r in cells) == sorted(by_cell)
    assert {r.data.tags["mlflow.parentRunId"] for r in cells} == {three.parent_run_id}
    assert all(r.info.status == "FINISHED" for r in cells)


def test_report_figures_from_the_study_run(tmp_path):
    config = load_study(write_study(tmp_path))
    outcome = run_study(prepare_study(config), InProcessExecutor(scripted_factory))
    from liftdspy.studies.report import build_report, write_report

    report = build_report(config.tracking.uri, "logic")
    assert report.run_id == outcome.parent_run_id
    assert [r.arm for r in report.rows] == ["zero-shot", "random-demos", "labeled"]
    by_arm = {r.arm: r for r in report.rows}
    assert by_arm["random-demos"].gain is None  # the baseline
    # The scripted engine answers demo prompts with another function name: both demo arms score
    # the same, zero-shot differs, so the gains are exact.
    expected = by_arm["zero-shot"].mean - by_arm["random-demos"].mean
    assert by_arm["zero-shot"].gain == pytest.approx(expected)
    assert by_arm["labeled"].gain == pytest.approx(
        by_arm["labeled"].mean - by_arm["random-demos"].mean
    )
    assert report.n_examples == 4 and report.seeds == ["1", "2"]
    cost = {c.arm: c for c in report.costs}
    assert cost["zero-shot"].live_calls == 4 and cost["random-demos"].requests == 8
    assert report.versions["liftdspy"] and report.versions["dspy"]
    index = write_report(report, tmp_path / "out", log_to_run=True)
    text = index.read_text()
    for arm in ("zero-shot", "random-demos", "labeled"):
        assert arm in text
    assert text.count("data:image/png;base64,") == 5
    client = MlflowClient(tracking_uri=config.tracking.uri)
    logged = {a.path for a in client.list_artifacts(outcome.parent_run_id, "report")}
    assert "report/index.html" in logged and "report/forest.png" in logged


def test_export_parity_sends_the_same_requests_as_dspy(tmp_path):
    """The best arm's prompt pack, run by liftdspy.runtime, sends byte-identical requests to the
    ones DSPy sends for the same examples (so every runtime call replays DSPy's recording)."""
    config = load_study(write_study(tmp_path))
    prepared = prepare_study(config)
    run_study(prepared, InProcessExecutor(scripted_factory))
    from liftdspy.studies.parity import run_study_parity
    from liftdspy.studies.report import build_report

    before = live_calls()
    parity = run_study_parity(prepared, scripted_factory)
    assert parity is not None and parity.requests == 4
    assert parity.identical_requests == 4
    assert parity.runtime_scores == parity.dspy_scores
    assert live_calls() == before  # every call replayed
    report = build_report(config.tracking.uri, "logic")
    assert report.parity is not None and report.parity.difference == 0.0


def test_cli_prints_the_plan_before_any_lm_call_and_names_bad_keys(tmp_path):
    from typer.testing import CliRunner

    from liftdspy.cli import app

    path = write_study(tmp_path)
    result = CliRunner().invoke(app, ["study", "run", str(path), "--plan"])
    assert result.exit_code == 0, result.output
    assert "plan (5 cells to run)" in result.output
    for arm in ("zero-shot", "random-demos", "labeled"):
        assert arm in result.output
    bad = CliRunner().invoke(app, ["study", "run", str(path), "--set", "arms.0.fixd=zero-shot"])
    assert bad.exit_code == 2  # bad input: the config
    assert "arms.0.fixd" in bad.stderr
    both = CliRunner().invoke(
        app, ["study", "run", str(path), "--concurrent-cells", "2", "--workers", "2"]
    )
    assert both.exit_code == 2 and "--concurrent-cells" in both.stderr
    assert "plan" not in both.output  # refused before anything is prepared
    assert live_calls() == 0


def test_the_constant_arm_is_the_floor_scored_as_an_arm_with_no_lm_call(tmp_path):
    """`fixed: constant` gives the metric's floor answer to every eval example (no LM built, no
    call), is paired with the baseline like any arm, and the report carries the floor, the
    normalised scores and a floor line / row in its page."""
    from liftdspy.experiments.examples import to_examples
    from liftdspy.experiments.metric_factory import make_metric
    from liftdspy.experiments.runner import select_tasks
    from liftdspy.metrics.floor import metric_floor
    from liftdspy.studies.cells import Cell, experiment_config
    from liftdspy.studies.report import build_report, write_report

    arms = [
        {"name": "constant", "fixed": "constant"},
        {"name": "zero-shot", "fixed": "zero-shot"},
        {"name": "random-demos", "fixed": "random-demos", "k": 2},
    ]
    config = load_study(write_study(tmp_path, arms=arms))
    prepared = prepare_study(config)
    assert prepared.plan.cells[0] == "constant/seed=any/lm=default"  # seed-free, first
    planned = {a.arm: a for a in prepared.plan.arms}
    assert planned["constant"].calls == 0 and planned["constant"].cells == 1
    outcome = run_study(prepared, InProcessExecutor(scripted_factory))
    constant = next(r for r in outcome.results if r.cell.arm == "constant")
    assert constant.status == "finished" and constant.cost.requests == 0
    assert live_calls() == 4 + 2 * 4  # zero-shot and random-demos only

    # The same floor, computed independently on the eval split
    cell_config = experiment_config(config, Cell(arm="constant", seed=None, lm="default"), ROOT)
    splits = select_tasks(cell_config)
    floor = metric_floor(
        make_metric(cell_config.metric),
        to_examples(splits.train, "nl_to_ir"),
        to_examples(splits.eval, "nl_to_ir"),
    )
    assert constant.scores == pytest.approx(floor.best().scores)
    assert constant.eval_ids == floor.example_ids

    report = build_report(config.tracking.uri, "logic")
    assert report.floor is not None and report.floor.floor == pytest.approx(floor.floor)
    rows = {r.arm: r for r in report.rows}
    assert rows["constant"].mean == pytest.approx(floor.floor)
    assert rows["constant"].mean_normalised == pytest.approx(0.0, abs=1e-12)
    assert rows["constant"].gain is not None  # paired with the baseline like any arm
    zero = rows["zero-shot"]
    assert zero.mean_normalised == pytest.approx((zero.mean - floor.floor) / (1 - floor.floor))
    assert zero.gain_normalised == pytest.approx(zero.gain / (1 - floor.floor))
    dumped = report.model_dump(mode="json")
    assert dumped["floor"]["winner"] == floor.winner and "mean_normalised" in dumped["rows"][0]
    text = write_report(report, tmp_path / "out").read_text()
    assert "id='floor'" in text and f"floor ({floor.winner})" in text
