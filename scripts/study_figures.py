"""Write `studies/demo.figures.json` from the shipped study's committed recording, replayed offline.

    .venv/bin/python scripts/study_figures.py

It runs `studies/demo.yaml` in offline mode against a fresh import of
`cache/recordings/study-demo.jsonl` (zero LM calls; cells without a complete recording fail, as
they must), builds the report (`liftdspy study report demo --json` reads the same), and writes the
figures `tests/test_studies_demo.py` compares its own replay with: per-arm rows with the floor and
floor-normalised scores, the floor, the MDE sentence, the finished cells and requests per arm.
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


def replay_offline(workdir: Path):
    """Run the shipped study offline in `workdir`; (prepared study, outcome, tracking URI)."""
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
    outcome = run_study(prepared, InProcessExecutor())
    mlflow.end_run()
    return prepared, outcome, tracking


def main() -> int:
    from liftdspy.studies.report import build_report

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
