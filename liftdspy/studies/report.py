"""The study report: figures from the MLflow study run, a self-contained HTML page with PNG plots
(matplotlib, Agg), and the same figures as JSON (`liftdspy study report STUDY --json`).

Figures: the metric's floor (the best constant answer on the eval examples, from the cells'
records; `liftdspy.metrics.floor`) and every score floor-normalised beside the raw one,
``(score - floor) / (1 - floor)``; every arm's mean with its crossed two-level bootstrap interval;
every arm's gain over
the baseline (paired on examples and seeds) with interval, Holm-adjusted p-value and W/L/T; the
minimum detectable effect; per-seed means; the per-example win/loss matrix; winner's-curse
optimism; cost per arm; export parity; exact versions (liftdspy, dspy, optuna, model file hash).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from pydantic import BaseModel, Field, field_serializer

from liftdspy.metrics.floor import MetricFloor, normalised
from liftdspy.redaction import redact_url
from liftdspy.stats import ScoreTable, SelectionRecord, StudyStatistics, analyze_study
from liftdspy.studies.cells import absolute_tracking_uri
from liftdspy.studies.metrics import log_study_metrics
from liftdspy.studies.results import CellResult, ParityResult
from liftdspy.studies.tracking import (
    StudyLookupError,
    cell_runs,
    load_cell_result,
    resolve_study_run,
)
from liftdspy.versioning import Version

logger = logging.getLogger(__name__)

PARITY_ARTIFACT = "study/parity.json"
REPORT_DIR = "report"
PLOTS = ("forest", "seeds", "winloss", "optimism", "cost")


class ArmRow(BaseModel):
    arm: str
    kind: str
    cells: int
    mean: float
    low: float
    high: float
    gain: float | None = None
    gain_low: float | None = None
    gain_high: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    significant: bool | None = None
    wins: int | None = None
    losses: int | None = None
    ties: int | None = None
    mde: float | None = None
    # Floor-normalised: (score - floor) / (1 - floor); the gain divided by 1 - floor.
    mean_normalised: float | None = None
    low_normalised: float | None = None
    high_normalised: float | None = None
    gain_normalised: float | None = None


class ArmCost(BaseModel):
    arm: str
    cells: int
    requests: int
    live_calls: int
    input_tokens: int
    output_tokens: int
    lm_seconds: float
    wall_seconds: float


class ParitySummary(BaseModel):
    arm: str
    cell: str
    n: int
    dspy_mean: float
    runtime_mean: float
    difference: float
    low: float
    high: float
    p_value: float
    identical_requests: int
    requests: int
    errors: list[str] = Field(default_factory=list)


class StudyReport(BaseModel):
    version: Version = "1"
    study: str
    run_id: str
    tracking_uri: str
    baseline: str
    n_examples: int
    seeds: list[str]
    rows: list[ArmRow]
    floor: MetricFloor | None = None  # on the report's eval examples; None: cells without one
    mde_sentence: str = ""
    statistics: StudyStatistics
    costs: list[ArmCost]
    cells: list[CellResult]
    not_finished: list[str]
    parity: ParitySummary | None = None
    versions: dict[str, str]

    @field_serializer("tracking_uri")
    def _without_credentials(self, uri: str) -> str:
        # report.json is logged to the study run and printed by --json; the URI in memory keeps
        # its credentials for logging the report.
        return redact_url(uri)


def _arm_kinds(client: MlflowClient, run) -> dict[str, str]:
    return {
        key.removeprefix("arm."): value
        for key, value in run.data.params.items()
        if key.startswith("arm.")
    }


def _latest_results(client: MlflowClient, parent) -> tuple[list[CellResult], list[str]]:
    """The latest result of each cell (finished ones preferred) and the cells not finished."""
    by_cell: dict[str, CellResult] = {}
    for run in cell_runs(client, parent):
        result = load_cell_result(client, run)
        if result is None:
            continue
        current = by_cell.get(result.cell.id)
        if current is None or result.status == "finished" or current.status != "finished":
            by_cell[result.cell.id] = result
    finished = [r for r in by_cell.values() if r.status == "finished"]
    return finished, sorted(cid for cid, r in by_cell.items() if r.status != "finished")


def _arm_order(client: MlflowClient, run_id: str) -> dict[str, int]:
    """Arm name -> position in the study config (the report lists arms in config order)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "study/config.json", tmp)
            arms = json.loads(Path(path).read_text(encoding="utf-8")).get("arms", [])
        except Exception:
            return {}
    return {arm["name"]: i for i, arm in enumerate(arms)}


def _score_table(results: list[CellResult]) -> ScoreTable:
    rows = []
    for result in results:
        arm = (
            result.cell.arm
            if result.cell.lm == "default"
            else f"{result.cell.arm}@{result.cell.lm}"
        )
        for example, score in zip(result.eval_ids, result.scores, strict=True):
            rows.append({"arm": arm, "seed": result.cell.seed, "example": example, "score": score})
    return ScoreTable.from_records(rows)


def study_floor(results: list[CellResult], examples: list[str]) -> MetricFloor | None:
    """The metric's floor on exactly `examples`, from the first cell that recorded one on
    (a superset of) them (every cell of a study scores the same eval examples)."""
    for result in results:
        floor = result.floor
        if floor is not None and set(examples) <= set(floor.example_ids):
            return floor.restricted(examples)
    return None


def _with_floor(row: ArmRow, floor: MetricFloor | None) -> ArmRow:
    if floor is None:
        return row
    row.mean_normalised = normalised(row.mean, floor.floor)
    row.low_normalised = normalised(row.low, floor.floor)
    row.high_normalised = normalised(row.high, floor.floor)
    if row.gain is not None and floor.floor < 1:
        row.gain_normalised = row.gain / (1 - floor.floor)
    return row


def _parity(client: MlflowClient, run_id: str) -> ParitySummary | None:
    from liftdspy.stats import paired_bootstrap

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, PARITY_ARTIFACT, tmp)
        except Exception:
            return None
        parity = ParityResult.model_validate_json(Path(path).read_text(encoding="utf-8"))
    comparison = paired_bootstrap(parity.dspy_scores, parity.runtime_scores)
    return ParitySummary(
        arm=parity.arm,
        cell=parity.cell,
        n=len(parity.eval_ids),
        dspy_mean=comparison.mean_a,
        runtime_mean=comparison.mean_b,
        difference=comparison.difference.mean,
        low=comparison.difference.low,
        high=comparison.difference.high,
        p_value=comparison.p_value,
        identical_requests=parity.identical_requests,
        requests=parity.requests,
        errors=parity.errors,
    )


def build_report(tracking_uri: str | None, study: str, **_: Any) -> StudyReport:
    """Everything the report shows, read from the study run `study` (name or run id)."""
    uri = absolute_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    parent = resolve_study_run(client, study)
    params = parent.data.params
    baseline = params.get("baseline", "random-demos")
    results, not_finished = _latest_results(client, parent)
    order = _arm_order(client, parent.info.run_id)
    results.sort(key=lambda r: (order.get(r.cell.arm, len(order)), r.cell.lm, str(r.cell.seed)))
    if not results:
        raise StudyLookupError(f"study run {parent.info.run_id}: no finished cell to report on")
    table = _score_table(results)
    selections = [
        SelectionRecord(
            arm=r.cell.arm,
            seed=r.cell.seed,
            validation_score=r.selected_val_score,
            evaluation_score=r.mean,
        )
        for r in results
        if r.selected_val_score is not None
    ]
    stats = analyze_study(table, baseline=baseline, selections=selections)
    kinds = _arm_kinds(client, parent)
    floor = study_floor(results, table.examples)
    comparisons = {c.arm: c for c in stats.comparisons}
    rows = []
    for summary in stats.arms:
        comparison = comparisons.get(summary.arm)
        row = ArmRow(
            arm=summary.arm,
            kind=kinds.get(summary.arm.split("@")[0], ""),
            cells=summary.n_seeds,
            mean=summary.mean.estimate,
            low=summary.mean.low,
            high=summary.mean.high,
        )
        if comparison is not None:
            row.gain = comparison.difference.estimate
            row.gain_low, row.gain_high = comparison.difference.low, comparison.difference.high
            row.p_value, row.p_holm = comparison.p_value, comparison.p_holm
            row.significant = comparison.significant
            row.wins, row.losses, row.ties = comparison.wins, comparison.losses, comparison.ties
            row.mde = comparison.mde.mde
        rows.append(_with_floor(row, floor))
    costs = []
    for arm in dict.fromkeys(r.cell.arm for r in results):
        mine = [r for r in results if r.cell.arm == arm]
        costs.append(
            ArmCost(
                arm=arm,
                cells=len(mine),
                requests=sum(r.cost.requests for r in mine),
                live_calls=sum(r.cost.live_calls for r in mine),
                input_tokens=sum(r.cost.input_tokens for r in mine),
                output_tokens=sum(r.cost.output_tokens for r in mine),
                lm_seconds=round(sum(r.cost.lm_seconds for r in mine), 2),
                wall_seconds=round(sum(r.cost.wall_seconds for r in mine), 2),
            )
        )
    # The MDE of the comparisons with a measured variance (the largest: the honest one).
    measured = [c for c in stats.comparisons if c.mde.mde is not None]
    sentences = (
        [max(measured, key=lambda c: c.mde.mde).mde_sentence]
        if measured
        else [c.mde_sentence for c in stats.comparisons if c.mde_sentence]
    )
    versions = {
        k.removeprefix("version."): v for k, v in params.items() if k.startswith("version.")
    }
    for result in results:
        for key in ("model", "model_sha256", "llama_cpp_python", "grammar"):
            if key in result.lm_identity:
                versions.setdefault(f"lm.{key}", result.lm_identity[key])
    return StudyReport(
        study=parent.data.tags.get("liftdspy.study", study),
        run_id=parent.info.run_id,
        tracking_uri=uri,
        baseline=baseline,
        n_examples=len(table.examples),
        seeds=sorted({str(r.cell.seed) for r in results if r.cell.seed is not None}),
        rows=rows,
        floor=floor,
        mde_sentence=sentences[0] if sentences else "",
        statistics=stats,
        costs=costs,
        cells=sorted(results, key=lambda r: r.cell.id),
        not_finished=not_finished,
        parity=_parity(client, parent.info.run_id),
        versions=dict(sorted(versions.items())),
    )


# ── plots ──────────────────────────────────────────────────────────────────────────────────────


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    return plt, fig, ax


def plot_forest(report: StudyReport, path: Path) -> None:
    rows = [r for r in report.rows if r.gain is not None]
    plt, fig, ax = _figure(7, 1.2 + 0.6 * max(1, len(rows)))
    for i, row in enumerate(rows):
        color = (
            "tab:green"
            if row.significant and row.gain > 0
            else ("tab:red" if row.significant else "tab:gray")
        )
        ax.errorbar(
            row.gain,
            i,
            xerr=[[row.gain - row.gain_low], [row.gain_high - row.gain]],
            fmt="o",
            color=color,
            capsize=4,
        )
        ax.annotate(
            f"{row.gain:+.3f}  p_Holm={row.p_holm:.3f}",
            (row.gain_high, i),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    mdes = [r.mde for r in rows if r.mde]
    if mdes:
        ax.axvspan(-max(mdes), max(mdes), color="tab:orange", alpha=0.12, label="± MDE")
        ax.legend(loc="lower right", fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    baseline = next((r for r in report.rows if r.arm == report.baseline), None)
    if report.floor is not None and baseline is not None:
        # Where an arm would sit that gave the floor's constant answer to every prompt.
        ax.axvline(
            report.floor.floor - baseline.mean,
            color="tab:brown",
            linestyle="--",
            linewidth=1,
            label=f"constant answer (floor {report.floor.floor:.3f})",
        )
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(range(len(rows)), [r.arm for r in rows])
    ax.set_xlabel(f"gain over {report.baseline} (95% CI, paired on examples and seeds)")
    ax.set_title(f"study {report.study}: {report.n_examples} examples")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_seeds(report: StudyReport, path: Path) -> None:
    plt, fig, ax = _figure(7, 1.2 + 0.55 * len(report.rows))
    for i, summary in enumerate(report.statistics.arms):
        xs = [s.mean for s in summary.per_seed]
        ax.scatter(xs, [i] * len(xs), color="tab:blue", zorder=3)
        for s in summary.per_seed:
            label = "any" if s.seed is None else str(s.seed)
            ax.annotate(
                label,
                (s.mean, i),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
        ax.plot(
            [summary.mean.low, summary.mean.high],
            [i, i],
            color="tab:gray",
            linewidth=3,
            alpha=0.4,
            zorder=1,
        )
    if report.floor is not None:
        ax.axvline(
            report.floor.floor,
            color="tab:brown",
            linestyle="--",
            linewidth=1,
            label=f"floor {report.floor.floor:.3f} (constant answer: {report.floor.winner})",
        )
        ax.legend(loc="best", fontsize=8)
    ax.set_yticks(range(len(report.statistics.arms)), [a.arm for a in report.statistics.arms])
    ax.set_xlabel("mean score per seed (dots; label = seed), arm's 95% CI (bar)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_winloss(report: StudyReport, path: Path) -> None:
    import numpy as np

    comparisons = report.statistics.comparisons
    examples = [d.example for d in comparisons[0].per_example] if comparisons else []
    plt, fig, ax = _figure(max(6, 0.32 * len(examples) + 2), 1.2 + 0.5 * max(1, len(comparisons)))
    if comparisons:
        matrix = np.array([[d.difference for d in c.per_example] for c in comparisons])
        bound = max(float(np.abs(matrix).max()), 1e-9)
        image = ax.imshow(matrix, cmap="RdYlGn", vmin=-bound, vmax=bound, aspect="auto")
        ax.set_yticks(range(len(comparisons)), [c.arm for c in comparisons])
        ax.set_xticks(range(len(examples)), examples, rotation=90, fontsize=6)
        fig.colorbar(image, ax=ax, label=f"score − {report.baseline}")
    ax.set_title("per-example difference vs baseline (seed-averaged): green win, red loss")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_optimism(report: StudyReport, path: Path) -> None:
    plt, fig, ax = _figure(6, 4)
    for arm in report.statistics.optimism:
        ax.scatter(
            [r.validation_score for r in arm.runs],
            [r.evaluation_score for r in arm.runs],
            label=f"{arm.arm} (mean optimism {arm.mean_optimism:+.3f})",
        )
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("selected candidate's score during optimization")
    ax.set_ylabel("its score on the held-out eval split")
    ax.set_title("winner's curse: points below the line were optimistic")
    if report.statistics.optimism:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_cost(report: StudyReport, path: Path) -> None:
    plt, fig, axes = _figure(9, 3)
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3), dpi=110)
    names = [c.arm for c in report.costs]
    for ax, (label, values) in zip(
        axes,
        (
            ("LM requests", [c.requests for c in report.costs]),
            ("output tokens", [c.output_tokens for c in report.costs]),
            ("LM seconds", [c.lm_seconds for c in report.costs]),
        ),
        strict=True,
    ):
        ax.barh(names, values, color="tab:purple")
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(
        "cost per arm (all its cells; optimizer arms without their baseline phase)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_plots(report: StudyReport, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, draw in (
        ("forest", plot_forest),
        ("seeds", plot_seeds),
        ("winloss", plot_winloss),
        ("optimism", plot_optimism),
        ("cost", plot_cost),
    ):
        paths[name] = out / f"{name}.png"
        draw(report, paths[name])
    return paths


# ── HTML ───────────────────────────────────────────────────────────────────────────────────────


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: float | None, sign: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def _floor_rows(report: StudyReport) -> list[list[Any]]:
    """A floor row in the arms table (its score; normalised 0 by definition)."""
    if report.floor is None:
        return []
    f = report.floor
    return [[f"floor ({f.winner})", "constant answer", "", _fmt(f.floor), "", _fmt(0.0)] + [""] * 6]


def _floor_html(report: StudyReport) -> str:
    if report.floor is None:
        return "<p id='floor'>No floor recorded for these cells (cells run before issue 18).</p>"
    f = report.floor
    answer = html.escape(json.dumps(f.best().answer, indent=2))
    others = ", ".join(f"{c.name} {c.mean:.3f}" for c in f.candidates)
    return (
        f"<p id='floor'>Floor of the {html.escape(f.metric)} metric on these {f.n} examples: "
        f"<b>{f.floor:.3f}</b>, the best constant answer ({html.escape(f.winner)}) given to "
        f"every prompt, no LM call; candidates: {html.escape(others)}. Floor-normalised score ="
        " (score − floor) / (1 − floor): 0 is the constant answer, 1 a perfect one.</p>"
        f"<details><summary>the constant answer</summary><pre>{answer}</pre></details>"
    )


def render_html(report: StudyReport, plots: dict[str, Path]) -> str:
    def img(name: str, alt: str) -> str:
        data = base64.b64encode(plots[name].read_bytes()).decode("ascii")
        return f'<img id="plot-{name}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'

    arms = _table(
        [
            "arm",
            "kind",
            "cells",
            "score",
            "95% CI",
            "floor-normalised [95% CI]",
            f"gain vs {report.baseline}",
            "gain 95% CI",
            "p",
            "p (Holm)",
            "W/L/T",
            "MDE",
        ],
        [
            [
                r.arm,
                r.kind,
                r.cells,
                _fmt(r.mean),
                f"[{_fmt(r.low)}, {_fmt(r.high)}]",
                ""
                if r.mean_normalised is None
                else f"{_fmt(r.mean_normalised)} [{_fmt(r.low_normalised)}, "
                f"{_fmt(r.high_normalised)}]",
                _fmt(r.gain, True),
                "" if r.gain is None else f"[{_fmt(r.gain_low, True)}, {_fmt(r.gain_high, True)}]",
                _fmt(r.p_value),
                _fmt(r.p_holm),
                "" if r.wins is None else f"{r.wins}/{r.losses}/{r.ties}",
                _fmt(r.mde),
            ]
            for r in report.rows
        ]
        + _floor_rows(report),
    )
    variance = _table(
        ["arm", "seed variance", "example variance", "residual"],
        [
            [a.arm, _fmt(a.variance.seed), _fmt(a.variance.example), _fmt(a.variance.residual)]
            for a in report.statistics.arms
        ],
    )
    optimism = _table(
        ["arm", "runs", "mean selected score", "mean eval score", "mean optimism"],
        [
            [
                o.arm,
                o.n_runs,
                _fmt(o.mean_validation),
                _fmt(o.mean_evaluation),
                _fmt(o.mean_optimism, True),
            ]
            for o in report.statistics.optimism
        ],
    )
    cost = _table(
        [
            "arm",
            "cells",
            "LM requests",
            "live calls",
            "input tokens",
            "output tokens",
            "LM seconds",
            "wall seconds",
        ],
        [
            [
                c.arm,
                c.cells,
                c.requests,
                c.live_calls,
                c.input_tokens,
                c.output_tokens,
                c.lm_seconds,
                c.wall_seconds,
            ]
            for c in report.costs
        ],
    )
    if report.parity is not None:
        p = report.parity
        parity = (
            f"<p>Best arm <b>{html.escape(p.arm)}</b> ({html.escape(p.cell)}): in DSPy "
            f"{p.dspy_mean:.3f}, exported prompt pack through <code>liftdspy.runtime</code> "
            f"{p.runtime_mean:.3f}; paired difference {p.difference:+.3f} "
            f"[{p.low:+.3f}, {p.high:+.3f}], p={p.p_value:.3f}. Requests byte-identical to "
            f"DSPy's: {p.identical_requests}/{p.requests}.</p>"
        )
    else:
        parity = "<p>Not measured for this study run.</p>"
    versions = _table(["component", "version"], [[k, v] for k, v in report.versions.items()])
    missing = (
        f"<p class='warn'>Not finished: {html.escape(', '.join(report.not_finished))}</p>"
        if report.not_finished
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>study {html.escape(report.study)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }}
.warn {{ color: #a40; }}
</style></head><body>
<h1>Study <code>{html.escape(report.study)}</code></h1>
<p>MLflow study run <code>{report.run_id}</code>; {report.n_examples} evaluation examples,
seeds {html.escape(", ".join(report.seeds))}; baseline <b>{html.escape(report.baseline)}</b>.</p>
{missing}
<h2>Arms</h2>{arms}
{_floor_html(report)}
<p id="mde">{html.escape(report.mde_sentence)}</p>
<h2>Gain over the baseline</h2>{img("forest", "forest plot of gains over the baseline")}
<h2>Per-seed scores</h2>{img("seeds", "per-seed mean scores per arm")}
<h3>Variance components</h3>{variance}
<h2>Per-example wins and losses</h2>{img("winloss", "per-example win/loss matrix")}
<h2>Winner's curse</h2>{optimism}{img("optimism", "selected score vs eval score")}
<h2>Cost per arm</h2>{cost}{img("cost", "cost per arm")}
<h2>Export parity</h2>{parity}
<h2>Versions</h2>{versions}
<h2>Method</h2><p>{html.escape(report.statistics.method)}</p>
</body></html>
"""


def write_report(report: StudyReport, out: Path, *, log_to_run: bool = False) -> Path:
    """Write `index.html`, the PNGs and `report.json` to `out`; optionally log them to the
    study run (artifacts under `report/`, figures as metrics: `liftdspy.studies.metrics`)."""
    out = Path(out)
    plots = write_plots(report, out)
    index = out / "index.html"
    index.write_text(render_html(report, plots), encoding="utf-8")
    (out / "report.json").write_text(
        json.dumps(report.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
    )
    if log_to_run:
        client = MlflowClient(tracking_uri=report.tracking_uri)
        client.log_artifacts(report.run_id, str(out), REPORT_DIR)
        log_study_metrics(client, report)
    return index
