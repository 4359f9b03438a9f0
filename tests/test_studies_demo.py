"""The shipped study (`studies/demo.yaml`), replayed offline from its committed recording
(`cache/recordings/study-demo.jsonl`, recorded live on the embedded SmolLM2-135M).

Offline mode never calls the model (a miss is an error), so this runs the real programs,
optimizers, metric, statistics and MLflow tracking with zero LM calls, and checks that the
report's figures are exactly the ones of the recording (`studies/demo.figures.json`, written by
`scripts/study_figures.py` from the same offline replay; the floor, floor-normalised scores and
crossed intervals included). Cells the live run did not finish have no complete recording: they
must fail here too, not finish with invented answers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from liftdspy.studies.executors import ThreadCellExecutor
from liftdspy.studies.parity import run_study_parity
from liftdspy.studies.report import build_report, write_report

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "cache" / "recordings" / "study-demo.jsonl"
FIGURES = ROOT / "studies" / "demo.figures.json"
STUDY = ROOT / "studies" / "demo.yaml"

pytestmark = [pytest.mark.local, pytest.mark.slow]

if os.environ.get("CI") == "true":
    import llama_cpp  # noqa: F401 - in CI the local extra must be there
else:
    pytest.importorskip("llama_cpp", reason="the study's engine needs the `local` extra")


def _study_figures():
    """scripts/study_figures.py: the one offline replay and the figures it pins."""
    import importlib.util

    path = ROOT / "scripts" / "study_figures.py"
    spec = importlib.util.spec_from_file_location("study_figures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_study_replays_offline_with_the_recorded_figures(tmp_path, monkeypatch):
    assert RECORDING.is_file(), f"{RECORDING} is missing: record it (README, Studies)"
    assert FIGURES.is_file(), f"{FIGURES} is missing"
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LIFTDSPY_RECORDER", raising=False)
    study_figures = _study_figures()
    # Three cells at once, as the live run was made (`--concurrent-cells 3`), while the figures
    # come from a one-at-a-time replay: a cell seeing another's LM, adapter, demos or MLflow
    # run would change its requests, a miss offline.
    prepared, outcome, tracking = study_figures.replay_offline(tmp_path, ThreadCellExecutor(3))
    assert outcome.spent_lm_calls == 0
    assert all(r.cost.live_calls == 0 for r in outcome.results)
    expected = json.loads(FIGURES.read_text())
    finished = sorted(r.cell.id for r in outcome.results if r.status == "finished")
    assert finished == expected["cells"]
    # Cells without a complete recording fail offline (a miss is an error), never finish.
    assert all(r.error for r in outcome.results if r.status != "finished")

    parity = run_study_parity(prepared)
    assert parity is not None and parity.requests == len(prepared.splits.eval)
    report = build_report(tracking, "demo")
    assert study_figures.figures(report) == expected, "stale: run `python scripts/study_figures.py`"
    assert report.floor is not None and report.floor.n == report.n_examples
    assert report.parity is not None
    assert report.parity.identical_requests == report.parity.requests
    assert report.parity.difference == 0.0
    index = write_report(report, tmp_path / "report")
    assert "mipro-small" in index.read_text() or "mipro-small" not in expected["cells"]


def test_the_readme_study_table_is_the_one_the_committed_figures_give():
    study_figures = _study_figures()
    rendered = study_figures.study_table(json.loads(FIGURES.read_text()))
    assert study_figures.published_table(ROOT / "README.md") == rendered, (
        "README.md's study table is stale: paste the output of "
        "`python scripts/study_figures.py --table`"
    )
