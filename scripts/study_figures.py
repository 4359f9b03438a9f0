"""Write `studies/demo.figures.json` from the shipped study's committed recording, replayed offline.

    .venv/bin/python scripts/study_figures.py           # write the figures (one offline replay)
    .venv/bin/python scripts/study_figures.py --table   # print the README's study table from them

It runs `studies/demo.yaml` in offline mode against a fresh import of
`cache/recordings/study-demo.jsonl` (zero LM calls; cells without a complete recording fail, as
they must), builds the report (`liftdspy study report demo --json` reads the same), and writes the
figures `tests/test_studies_demo.py` compares its own replay with: per-arm rows with the floor and
floor-normalised scores, the floor, the MDE sentence, the finished cells and requests per arm.
`study_table` renders the README's table (between the study-table markers) from those figures,
and the test checks the README holds exactly that.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "cache" / "recordings" / "study-demo.jsonl"
FIGURES = ROOT / "studies" / "demo.figures.json"
STUDY = ROOT / "studies" / "demo.yaml"
BEGIN, END = "<!-- study-table:begin -->", "<!-- study-table:end -->"


def figures(report) -> dict:
    """The figures of a study report that the committed figures file pins."""
    floor = report.floor
    return {
        "n_examples": report.n_examples,
        "seeds": report.seeds,
        "rows": [r.model_dump(mode="json") for r in report.rows],
        "floor": None
        if floor is None
        else {"floor": floor.floor, "winner": floor.winner, "n": floor.n},
        "mde_sentence": report.mde_sentence,
        "cells": sorted(c.cell.id for c in report.cells),
        "requests": {c.arm: c.requests for c in report.costs},
    }


def _ci(low: float | None, high: float | None, sign: str = "") -> str:
    if low is None or high is None:
        return ""
    return f"[{low:{sign}.3f}, {high:{sign}.3f}]"


def study_table(figures: dict) -> str:
    """The README's study table (with its markers) from `figures` (studies/demo.figures.json)."""
    floor = figures["floor"]
    lines = [
        BEGIN,
        "| arm | cells | score | 95% CI | floor-normalised | gain vs baseline | gain 95% CI "
        "| p (Holm) | MDE | W/L/T |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in figures["rows"]:
        baseline = row["gain"] is None
        normalised = row.get("mean_normalised")
        lines.append(
            "| "
            + " | ".join(
                [
                    row["arm"] + (" (floor)" if row["kind"] == "constant" else ""),
                    str(row["cells"]),
                    f"{row['mean']:.3f}",
                    _ci(row["low"], row["high"]),
                    "" if normalised is None else f"{normalised:+.3f}",
                    "(baseline)" if baseline else f"{row['gain']:+.3f}",
                    "" if baseline else _ci(row["gain_low"], row["gain_high"], "+"),
                    "" if baseline else f"{row['p_holm']:.3f}",
                    "" if baseline or row["mde"] is None else f"{row['mde']:.3f}",
                    "" if baseline else f"{row['wins']}/{row['losses']}/{row['ties']}",
                ]
            )
            + " |"
        )
    lines += [
        "",
        f"{figures['n_examples']} eval tasks × seeds {', '.join(figures['seeds'])}; "
        + (
            f"floor: the best constant answer (`{floor['winner']}`, {floor['floor']:.3f}) on the "
            f"same {floor['n']} tasks; "
            if floor
            else ""
        )
        + f"{figures['mde_sentence']} (80% power, α = 0.05; what a gain smaller than that "
        "shows is not distinguishable from noise).",
        END,
    ]
    return "\n".join(lines)


def published_table(page: Path = ROOT / "README.md") -> str:
    text = page.read_text(encoding="utf-8")
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def replay_offline(workdir: Path, executor=None):
    """Run the shipped study offline in `workdir` (one cell at a time unless `executor` says
    otherwise); (prepared study, outcome, tracking URI)."""
    import mlflow

    from liftdspy.lm.store import RecordingStore, ensure_imported
    from liftdspy.studies import load_study
    from liftdspy.studies.executors import InProcessExecutor
    from liftdspy.studies.runner import prepare_study, run_study

    store = workdir / "store"
    ensure_imported(RECORDING, RecordingStore(store))
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    overrides = ["lm.recorder.mode=offline", f"lm.recorder.path={store}"]
    if load_study(STUDY).reflection_lm is not None:  # GEPA's reflection LM: the same recording
        overrides += ["reflection_lm.recorder.mode=offline", f"reflection_lm.recorder.path={store}"]
    config = load_study(STUDY, [*overrides, f"tracking.uri={tracking}"])
    prepared = prepare_study(config)
    outcome = run_study(prepared, executor or InProcessExecutor())
    mlflow.end_run()
    return prepared, outcome, tracking


def main() -> int:
    from liftdspy.studies.report import build_report

    if sys.argv[1:] == ["--table"]:
        sys.stdout.write(study_table(json.loads(FIGURES.read_text(encoding="utf-8"))) + "\n")
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        _, outcome, tracking = replay_offline(Path(tmp))
        if outcome.spent_lm_calls:
            sys.stderr.write(f"the replay called the model {outcome.spent_lm_calls} times\n")
            return 1
        report = build_report(tracking, "demo")
    FIGURES.write_text(json.dumps(figures(report), indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {FIGURES.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
