"""`compare_runs` and `liftdspy compare` against a real MLflow SQLite store holding runs shaped
like the experiment runner's (params, tags, metrics, reports/*.json, results tables, child runs)."""

from __future__ import annotations

import json
import time

import mlflow
import pytest
import typer
from typer.testing import CliRunner

from liftdspy.cli.compare_cmd import compare
from liftdspy.compare import Comparison, RunLookupError, compare_runs
from liftdspy.experiments.evaluation import EvaluationReport, ExampleResult
from liftdspy.metrics.floor import FloorCandidate, MetricFloor
from liftdspy.stats import bootstrap_ci, paired_bootstrap
from liftdspy.tracking import configure_tracking, flatten_params

# Creating the SQLite store (MLflow's migrations) takes ~15 s on 2 cores.
pytestmark = pytest.mark.slow

runner = CliRunner()
app = typer.Typer()
app.command()(compare)
app.command("other")(lambda: None)  # a second command keeps `compare` a named subcommand

IDS = [f"task-{i:02d}" for i in range(1, 11)]
BASE = [0.0, 0.2, 0.5, 0.4, 0.1, 0.3, 0.6, 0.2, 0.5, 0.3]  # task-01 is a program error
BETTER = [s + 0.3 for s in BASE]  # wins on every example
PARTIAL_IDS = IDS[5:] + [f"task-{i:02d}" for i in range(11, 16)]
PARTIAL = [0.9, 0.1, 0.8, 0.2, 0.7, 1.0, 0.0, 1.0, 0.5, 0.5]
DISJOINT_IDS = ["other-1", "other-2", "other-3"]


def hand_floor(ids: list[str]) -> MetricFloor:
    """A floor with two hand-made constant answers: `flat` scores 0.1 everywhere, `early` 0.3 on
    task-01..05 and 0 elsewhere (so which one wins depends on the examples)."""
    flat = [0.1] * len(ids)
    early = [0.3 if i in IDS[:5] else 0.0 for i in ids]
    candidates = [
        FloorCandidate(name=name, answer={"ir": {}}, mean=sum(s) / len(s), scores=s)
        for name, s in (("flat", flat), ("early", early))
    ]
    best = max(candidates, key=lambda c: c.mean)
    return MetricFloor(
        metric="ir", example_ids=ids, floor=best.mean, winner=best.name, candidates=candidates
    )


def evaluation_report(label: str, ids: list[str], scores: list[float]) -> EvaluationReport:
    """A report as `evaluate_program` builds it: per-example score and metric components; a
    zero score on the first example of a run whose scores start at 0 is a program error; a zero
    score on another example is an answer cut off at max_tokens."""
    results = []
    for i, (example_id, score) in enumerate(zip(ids, scores, strict=True)):
        if i == 0 and score == 0.0:
            results.append(ExampleResult(id=example_id, score=0.0, error="ValueError: boom"))
            continue
        if score == 0.0:
            cut = "answer truncated at 64 tokens (finish_reason length, max_tokens=64)"
            results.append(ExampleResult(id=example_id, score=0.0, error=cut, truncated=True))
            continue
        components = {"ir.signature": min(1.0, score + 0.1), "code.tests": score}
        results.append(ExampleResult(id=example_id, score=score, components=components))
    names = sorted({k for r in results for k in r.components})
    return EvaluationReport(
        label=label,
        n=len(results),
        score=bootstrap_ci(scores),
        components={
            n: sum(r.components.get(n, 0.0) for r in results) / len(results) for n in names
        },
        results=results,
        seconds=1.5,
        floor=hand_floor(ids),
    )


def log_experiment_run(
    name: str,
    *,
    program: str,
    optimizer: str,
    ids: list[str],
    baseline: list[float],
    optimized: list[float] | None,
    lm_calls: float,
    candidates: int = 0,
) -> str:
    """One parent run as `run_experiment` logs it; `optimized=None` is a run interrupted after
    its baseline evaluation."""
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(
            flatten_params(
                {"name": name, "program": {"name": program}, "optimizer": {"preset": optimizer}}
            )
        )
        mlflow.set_tags(
            {
                "liftdspy.role": "experiment",
                "liftdspy.experiment": name.split("-")[0],
                "liftdspy.program": program,
                "liftdspy.optimizer": optimizer,
                "liftdspy.eval_ids": ",".join(ids),
            }
        )
        reports = {"baseline": evaluation_report("baseline", ids, baseline)}
        if optimized is not None:
            reports["optimized"] = evaluation_report("optimized", ids, optimized)
        for prefix, report in reports.items():
            metrics = {
                f"{prefix}_score": report.score.mean,
                f"{prefix}_score_ci_low": report.score.low,
                f"{prefix}_score_ci_high": report.score.high,
            }
            metrics.update({f"{prefix}.{k}": v for k, v in report.components.items()})
            mlflow.log_metrics(metrics)
            mlflow.log_table(data=report.table(), artifact_file=f"results/{prefix}.json")
            mlflow.log_dict(report.model_dump(mode="json"), f"reports/{prefix}.json")
        cost = {"lm_calls": lm_calls, "lm_input_tokens": 40 * lm_calls, "wall_seconds.total": 2.5}
        mlflow.log_metrics(cost)
        mlflow.log_dict(cost, "reports/cost.json")
        for index in range(candidates):
            time.sleep(0.01)
            with mlflow.start_run(run_name=f"candidate-{index:02d}", nested=True):
                mlflow.set_tag("liftdspy.role", "candidate")
                mlflow.log_metric("candidate_score", 0.5)
        time.sleep(0.01)  # distinct start times for `latest`
        return run.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    runs = {"uri": uri}
    configure_tracking(uri, "compare-test")
    common = {"program": "pipeline", "ids": IDS, "baseline": BASE}
    runs["base"] = log_experiment_run(
        "base-run", optimizer="bootstrap", optimized=BASE, lm_calls=20, **common
    )
    runs["better"] = log_experiment_run(
        "better-run", optimizer="mipro", optimized=BETTER, lm_calls=90, **common
    )
    runs["interrupted"] = log_experiment_run(
        "interrupted-run", optimizer="gepa", optimized=None, lm_calls=10, **common
    )
    configure_tracking(uri, "compare-other")
    runs["disjoint"] = log_experiment_run(
        "disjoint-run",
        program="direct",
        optimizer="bootstrap",
        ids=DISJOINT_IDS,
        baseline=[0.1, 0.2, 0.3],
        optimized=[0.4, 0.5, 0.6],
        lm_calls=6,
    )
    runs["partial"] = log_experiment_run(
        "partial-run",
        program="direct",
        optimizer="gepa",
        ids=PARTIAL_IDS,
        baseline=[0.5] * 10,
        optimized=PARTIAL,
        lm_calls=30,
        candidates=2,  # child runs start after their parent; `latest` must skip them
    )
    mlflow.set_tracking_uri("")
    return runs


def test_scores_components_and_cost_come_from_each_runs_report(store) -> None:
    result = compare_runs([store["base"], store["better"]], tracking_uri=store["uri"])
    base, better = result.runs
    assert (base.name, better.name) == ("base-run", "better-run")
    assert (base.program, base.optimizer, better.optimizer) == ("pipeline", "bootstrap", "mipro")
    assert base.mlflow_experiment == "compare-test"
    assert base.score == bootstrap_ci(BASE)
    assert better.score.mean == pytest.approx(sum(BETTER) / len(BETTER))
    assert better.score.low <= better.score.mean <= better.score.high
    assert base.baseline == bootstrap_ci(BASE)
    assert base.errors == 1 and better.errors == 0
    # The errored example has no components and counts as 0 in every component's mean.
    assert base.components["code.tests"] == pytest.approx(sum(BASE[1:]) / len(BASE))
    assert better.components["ir.signature"] == pytest.approx(
        sum(min(1.0, s + 0.1) for s in BETTER) / len(BETTER)
    )
    assert base.cost["lm_calls"] == 20 and better.cost["lm_input_tokens"] == 3600


def test_a_run_better_on_every_example_wins_them_all(store) -> None:
    result = compare_runs([store["base"], store["better"]], tracking_uri=store["uri"])
    (pair,) = result.pairs
    assert pair.comparable and pair.n_common == len(IDS) and not pair.note
    test = pair.test
    assert (test.wins, test.losses, test.ties) == (len(IDS), 0, 0)
    assert test.p_value < 0.01
    assert test.difference.mean == pytest.approx(0.3)
    assert test.difference.low > 0


def test_runs_on_different_examples_are_compared_on_the_intersection(store) -> None:
    result = compare_runs(["base-run", "partial-run"], tracking_uri=store["uri"])
    (pair,) = result.pairs
    common = IDS[5:]
    assert pair.n_common == len(common) and pair.comparable
    assert pair.only_in_a == IDS[:5] and pair.only_in_b == PARTIAL_IDS[5:]
    assert "5 examples both evaluated" in pair.note and pair.note in result.notes
    expected = paired_bootstrap(BASE[5:], PARTIAL[:5])
    assert pair.test == expected
    # Each run's floor is on its own examples; the pair's on the 5 both evaluated, where the
    # constant answer that wins changes (`early` on task-01..10, `flat` on task-06..10).
    base, partial = result.runs
    assert base.floor == pytest.approx(0.15) and base.floor_answer == "early"
    assert base.score_normalised.mean == pytest.approx((sum(BASE) / 10 - 0.15) / 0.85)
    assert partial.floor == pytest.approx(0.1) and partial.floor_answer == "flat"
    assert pair.floor == pytest.approx(0.1)
    assert pair.difference_normalised == pytest.approx(expected.difference.mean / 0.9)
    by_id = {e.id: e.scores for e in result.examples}
    assert by_id["task-01"][store["partial"]] is None
    assert by_id["task-15"] == {store["base"]: None, store["partial"]: PARTIAL[-1]}


def test_runs_sharing_no_example_are_not_comparable(store) -> None:
    result = compare_runs(["base-run", "disjoint-run", "better-run"], tracking_uri=store["uri"])
    assert len(result.pairs) == 3
    disjoint = [p for p in result.pairs if store["disjoint"] in (p.run_a, p.run_b)]
    assert len(disjoint) == 2
    for pair in disjoint:
        assert not pair.comparable and pair.test is None and pair.n_common == 0
        assert "not comparable" in pair.note
    assert any(p.comparable for p in result.pairs)


def test_latest_is_the_newest_experiment_run_not_a_candidate(store) -> None:
    result = compare_runs(["latest"], tracking_uri=store["uri"])
    assert [r.run_id for r in result.runs] == [store["partial"]]
    assert result.pairs == []


def test_the_same_run_named_twice_is_compared_once(store) -> None:
    result = compare_runs(["latest", "partial-run"], tracking_uri=store["uri"])
    assert len(result.runs) == 1 and "already listed" in result.notes[0]


def test_baseline_reports_can_be_compared_even_for_an_interrupted_run(store) -> None:
    with pytest.raises(RunLookupError, match=r"interrupted-run.*reports/optimized\.json"):
        compare_runs(["base-run", "interrupted-run"], tracking_uri=store["uri"])
    result = compare_runs(
        ["base-run", "interrupted-run"], tracking_uri=store["uri"], which="baseline"
    )
    assert result.which == "baseline"
    assert result.pairs[0].test.ties == len(IDS)  # both runs share the same baseline scores


def test_unknown_runs_are_named_in_the_error(store) -> None:
    with pytest.raises(RunLookupError, match="no-such-run"):
        compare_runs(["base-run", "no-such-run"], tracking_uri=store["uri"])
    with pytest.raises(RunLookupError, match="0123456789abcdef0123456789abcdef"):
        compare_runs(["0123456789abcdef0123456789abcdef"], tracking_uri=store["uri"])


def test_latest_in_an_empty_store_says_there_is_no_run(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(RunLookupError, match="'latest': no liftdspy experiment run"):
        compare_runs(["latest"], tracking_uri=uri)


def test_cli_prints_scores_components_pairs_and_cost(store) -> None:
    result = runner.invoke(
        app,
        ["compare", "base-run", "better-run", "partial-run", "--tracking-uri", store["uri"]],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "base-run",
        "better-run",
        "partial-run",
        "code.tests",
        "paired bootstrap",
        "cost",
        "floor-normalised",
    ):
        assert text in out
    assert f"{sum(BETTER) / len(BETTER):.3f}" in out
    assert "5 examples both evaluated" in out  # the intersection note
    assert "task-15" in out  # per-example table lists an example only one run evaluated


def test_cli_json_parses_as_a_comparison(store) -> None:
    result = runner.invoke(
        app, ["compare", store["base"], "better-run", "--json", "--tracking-uri", store["uri"]]
    )
    assert result.exit_code == 0, result.output
    parsed = Comparison.model_validate(json.loads(result.output))
    assert [r.name for r in parsed.runs] == ["base-run", "better-run"]
    assert parsed.pairs[0].test.wins == len(IDS)


def test_truncated_answers_are_shown_per_run(store) -> None:
    comparison = compare_runs(["partial-run", "base-run"], tracking_uri=store["uri"])
    partial, base = comparison.runs
    assert partial.truncated_rate == pytest.approx(0.1)  # one of its ten answers was cut off
    assert base.truncated_rate == 0.0
    result = runner.invoke(
        app,
        ["compare", "partial-run", "base-run", "--tracking-uri", store["uri"]],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "truncated" in result.output and "10%" in result.output
    as_json = runner.invoke(
        app, ["compare", "partial-run", "--json", "--tracking-uri", store["uri"]]
    )
    assert json.loads(as_json.output)["runs"][0]["truncated_rate"] == pytest.approx(0.1)


def test_cli_unknown_run_fails_naming_it(store) -> None:
    result = runner.invoke(app, ["compare", "nope-run", "--tracking-uri", store["uri"]])
    assert result.exit_code == 2  # bad input: no such run
    assert "nope-run" in result.stderr and result.stdout == ""
    bad = runner.invoke(
        app, ["compare", "latest", "--which", "final", "--tracking-uri", store["uri"]]
    )
    assert bad.exit_code == 2 and "final" in bad.output
