"""Read a finished (pilot) study back from MLflow as what a power plan needs: each arm's variance
components against the baseline and the measured cost per cell and per LM call; and the MDE a
study about to run will reach, said before any LM call.
"""

from __future__ import annotations

import logging

from liftdspy.stats import ScoreTable, variance_components
from liftdspy.stats.comparison import paired_difference
from liftdspy.stats.power import DEFAULT_ALPHA, DEFAULT_POWER
from liftdspy.studies.config import StudyConfig
from liftdspy.studies.plan import calls_per_example
from liftdspy.studies.power_plan import ArmCostModel, PilotMeasurements, design_mde
from liftdspy.studies.report import StudyReport, build_report
from liftdspy.studies.results import CellResult
from liftdspy.studies.tracking import StudyLookupError

logger = logging.getLogger(__name__)


def score_table(cells: list[CellResult]) -> ScoreTable:
    """The finished cells' per-example scores as a tidy table (arm, seed, example, score)."""
    rows = [
        {"arm": r.cell.arm, "seed": r.cell.seed, "example": example, "score": score}
        for r in cells
        if r.status == "finished" and r.cell.lm == "default"
        for example, score in zip(r.eval_ids, r.scores, strict=True)
    ]
    return ScoreTable.from_records(rows)


def measurements_of(report: StudyReport, study: StudyConfig) -> PilotMeasurements:
    """Variance components of every arm of `study` the pilot ran (paired with `study`'s
    baseline) and each arm's cost per cell, from the pilot's report."""
    if not report.cells:
        raise StudyLookupError(f"pilot {report.study!r} has no finished cell")
    table = score_table(report.cells)
    if study.baseline not in table.arms:
        raise StudyLookupError(
            f"pilot {report.study!r} has no finished cell of the baseline arm "
            f"{study.baseline!r}; its arms: {', '.join(table.arms)}"
        )
    components = {}
    for arm in study.arms:
        if arm.name == study.baseline or arm.name not in table.arms:
            continue
        d, _ = paired_difference(table, arm.name, study.baseline)
        found = variance_components(d)
        if (found.seed or 0) + (found.example or 0) + (found.residual or 0) > 0:
            components[arm.name] = found
    per_example = calls_per_example(study)
    costs = {}
    for arm in study.arms:
        mine = [c for c in report.cells if c.cell.arm == arm.name]
        extra = [max(0, c.cost.requests - len(c.eval_ids) * per_example) for c in mine]
        costs[arm.name] = ArmCostModel(
            arm=arm.name,
            seeded=arm.seeded,
            compile_calls=sum(extra) / len(extra) if extra else 0.0,
            measured=bool(mine),
        )
    requests = sum(c.cost.requests for c in report.cells)
    seconds = sum(c.cost.lm_seconds for c in report.cells)
    return PilotMeasurements(
        pilot=report.study,
        n_seeds=len(report.seeds) or 1,
        n_examples=report.n_examples,
        components=components,
        costs=costs,
        seconds_per_call=seconds / requests if requests else None,
    )


def read_pilot(
    study: StudyConfig, pilot: str | None, tracking_uri: str | None
) -> PilotMeasurements:
    """The measurements of study run `pilot` (name or run id; default: the latest run of
    `study` itself) in `tracking_uri` (default: the study's store)."""
    report = build_report(tracking_uri or study.tracking.uri, pilot or study.name)
    return measurements_of(report, study)


def expected_mde(study: StudyConfig, n_examples: int) -> str:
    """One sentence: the MDE this study will reach (from its own earlier runs as the pilot), or
    why that cannot be known yet. Never raises: it is said before a run, not a reason to stop."""
    compared = [a for a in study.arms if a.name != study.baseline]
    alpha = DEFAULT_ALPHA / max(1, len(compared))
    try:
        measured = read_pilot(study, None, None)
    except StudyLookupError as exc:
        return (
            f"MDE: not known yet ({exc}); after this run, `liftdspy study plan` sizes the next "
            "one from it"
        )
    except Exception as exc:  # an unreadable pilot must not stop the run
        logger.debug("no pilot for %s: %s", study.name, exc, exc_info=True)
        return f"MDE: not known yet (previous results unreadable: {type(exc).__name__})"
    mde, arm = design_mde(measured, len(study.seeds), n_examples, alpha, DEFAULT_POWER)
    if mde is None:
        return "MDE: not known yet (the previous results show no variance in any comparison)"
    return (
        f"MDE: with {n_examples} tasks × {len(study.seeds)} seeds this study can detect a gain "
        f"of ≥ {mde:.2f} over {study.baseline} at {DEFAULT_POWER:.0%} power, Holm over "
        f"{len(compared)} arms (α = {alpha:.3g} per test; largest for {arm}; variance from the "
        f"previous run of {measured.pilot}: {measured.n_examples} tasks × {measured.n_seeds} seeds)"
    )
