"""Compare experiment runs: scores with intervals, components, cost, and paired tests per pair."""

from __future__ import annotations

import logging
from itertools import combinations

from mlflow.tracking import MlflowClient

from liftdspy.compare.models import (
    Comparison,
    ExampleScores,
    PairwiseResult,
    ReportKind,
    RunSummary,
)
from liftdspy.experiments.evaluation import EvaluationReport, normalised_interval
from liftdspy.metrics.floor import MetricFloor
from liftdspy.redaction import redact_url
from liftdspy.stats import bootstrap_ci, paired_bootstrap
from liftdspy.tracking import layout, resolve_tracking_uri
from liftdspy.tracking.run_record import RunRecord, read_run
from liftdspy.tracking.runs import resolve_run

logger = logging.getLogger(__name__)

MAX_LISTED_IDS = 20


def _scores_by_id(report: EvaluationReport, label: str, notes: list[str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for result in report.results:
        if result.id in scores:
            notes.append(f"{label}: example {result.id!r} appears twice; using its last score")
        scores[result.id] = result.score
    return scores


def _component_means(report: EvaluationReport) -> dict[str, float]:
    names = sorted({name for r in report.results for name in r.components})
    if not report.results:
        return {}
    return {
        name: sum(r.components.get(name, 0.0) for r in report.results) / len(report.results)
        for name in names
    }


def _summary(
    client: MlflowClient, record: RunRecord, report: EvaluationReport, seed: int
) -> RunSummary:
    experiment = client.get_experiment(record.experiment_id)
    baseline = record.reports.get("baseline")
    score = bootstrap_ci(report.scores(), seed=seed)
    baseline_score = bootstrap_ci(baseline.scores(), seed=seed) if baseline else None
    floor = report.floor
    return RunSummary(
        run_id=record.run_id,
        name=record.name,
        mlflow_experiment=experiment.name if experiment else record.experiment_id,
        experiment=record.tags.get(layout.EXPERIMENT_TAG, ""),
        program=record.tags.get(layout.PROGRAM_TAG, ""),
        optimizer=record.tags.get(layout.OPTIMIZER_TAG, ""),
        status=record.status,
        start_time=record.start_time,
        n=len(report.results),
        errors=sum(1 for r in report.results if r.error),
        truncated_rate=report.truncated_rate,
        seed=seed,
        score=score,
        baseline=baseline_score,
        floor=floor.floor if floor else None,
        floor_answer=floor.winner if floor else None,
        score_normalised=normalised_interval(score, floor),
        baseline_normalised=(
            normalised_interval(baseline_score, baseline.floor or floor)
            if baseline and baseline_score
            else None
        ),
        components=_component_means(report),
        cost=record.cost.metrics(),
    )


def _listed(ids: list[str]) -> str:
    shown = ", ".join(ids[:MAX_LISTED_IDS])
    return shown + (f" and {len(ids) - MAX_LISTED_IDS} more" if len(ids) > MAX_LISTED_IDS else "")


def _pair_floor(
    floors: tuple[MetricFloor | None, MetricFloor | None], common: list[str]
) -> float | None:
    """The floor on the examples both runs evaluated: run A's floor restricted to them, else
    run B's (None when neither run recorded one, or it lacks one of the examples)."""
    for floor in floors:
        if floor is not None and set(common) <= set(floor.example_ids):
            return floor.restricted(common).floor
    return None


def _pair(
    a: RunSummary,
    b: RunSummary,
    scores_a,
    scores_b,
    seed: int,
    floors: tuple[MetricFloor | None, MetricFloor | None] = (None, None),
) -> PairwiseResult:
    common = [i for i in scores_a if i in scores_b]
    only_a = [i for i in scores_a if i not in scores_b]
    only_b = [i for i in scores_b if i not in scores_a]
    note = ""
    if not common:
        note = f"not comparable: {a.name} and {b.name} share no evaluated example"
    elif only_a or only_b:
        note = (
            f"compared on the {len(common)} examples both evaluated "
            f"({len(only_a)} only in {a.name}, {len(only_b)} only in {b.name})"
        )
    test = floor = None
    if common:
        test = paired_bootstrap(
            [scores_a[i] for i in common], [scores_b[i] for i in common], seed=seed
        )
        floor = _pair_floor(floors, common)
    return PairwiseResult(
        run_a=a.run_id,
        run_b=b.run_id,
        name_a=a.name,
        name_b=b.name,
        n_a=len(scores_a),
        n_b=len(scores_b),
        n_common=len(common),
        only_in_a=only_a,
        only_in_b=only_b,
        comparable=bool(common),
        note=note,
        test=test,
        floor=floor,
        difference_normalised=(
            test.difference.mean / (1 - floor)
            if test is not None and floor is not None and floor < 1
            else None
        ),
    )


def compare_runs(
    run_ids: list[str],
    tracking_uri: str | None = None,
    which: ReportKind = "optimized",
    *,
    seed: int | None = None,
) -> Comparison:
    """Compare the `which` evaluation ("optimized" or "baseline") of the named runs.

    Each entry of `run_ids` is a run id, a run name or `latest`. Every run is scored from its
    per-example report (bootstrap 95% interval), and every pair of runs gets a paired bootstrap
    test on the examples both evaluated (matched by example id). The bootstraps use the seed stored
    on each run (a pair: run A's), so a run's figures here equal its own; `seed` overrides it.
    Raises `RunLookupError` naming
    any run that is not in the store or has no such report.
    """
    if not run_ids:
        raise ValueError("compare_runs needs at least one run")
    if which not in ("optimized", "baseline"):
        raise ValueError(f"which must be 'optimized' or 'baseline', not {which!r}")
    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    notes: list[str] = []
    run_ids_found: list[str] = []
    for reference in run_ids:
        run_id = resolve_run(client, reference, uri).info.run_id
        if run_id in run_ids_found:
            notes.append(f"{reference!r} is run {run_id}, already listed; compared once")
            continue
        run_ids_found.append(run_id)

    summaries: list[RunSummary] = []
    scores: list[dict[str, float]] = []
    floors: list[MetricFloor | None] = []
    for run_id in run_ids_found:
        record = read_run(run_id, client=client)
        report = record.require_report(which)
        summary = _summary(
            client, record, report, record.bootstrap_seed() if seed is None else seed
        )
        summaries.append(summary)
        scores.append(_scores_by_id(report, summary.name, notes))
        floors.append(report.floor)

    pairs: list[PairwiseResult] = []
    for i, j in combinations(range(len(summaries)), 2):
        pair = _pair(
            summaries[i],
            summaries[j],
            scores[i],
            scores[j],
            summaries[i].seed,
            (floors[i], floors[j]),
        )
        if pair.note:
            notes.append(pair.note)
            logger.info("%s", pair.note)
        pairs.append(pair)

    all_ids = list(dict.fromkeys(i for by_id in scores for i in by_id))
    examples = [
        ExampleScores(
            id=example_id,
            scores={
                s.run_id: by_id.get(example_id) for s, by_id in zip(summaries, scores, strict=True)
            },
        )
        for example_id in all_ids
    ]
    return Comparison(
        tracking_uri=redact_url(uri),
        which=which,
        runs=summaries,
        pairs=pairs,
        examples=examples,
        notes=notes,
    )
