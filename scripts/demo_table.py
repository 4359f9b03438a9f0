"""Print the demo table from the committed recording, replayed offline (zero LM calls).

    .venv/bin/python scripts/demo_table.py

`tests/test_demo_replay.py` renders the same table from its own offline replay and checks that
docs/measurements/demo.md holds it verbatim between the demo-table markers, so the published demo
figures cannot drift from the recording. The table shows the metric's floor (the best constant
answer on the same test tasks, `liftdspy.metrics.floor`) and every score floor-normalised.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "cache" / "recordings" / "demo.jsonl"
DEMO = ROOT / "experiments" / "demo.yaml"
BEGIN, END = "<!-- demo-table:begin -->", "<!-- demo-table:end -->"


def recording_endings(path: Path = RECORDING) -> tuple[int, int]:
    """(answers that ended on their own, all answers) in a recording JSONL."""
    ended = total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        total += 1
        ended += entry["response"].get("finish_reason") == "stop"
    return ended, total


def render_table(outcome, endings: tuple[int, int]) -> str:
    """The markdown block between the demo-table markers."""
    base, opt, gain = outcome.baseline, outcome.optimized, outcome.comparison
    diff = gain.difference
    floor = opt.floor
    ended, total = endings

    def normalised(report) -> str:
        n = report.score_normalised
        return f"{n.mean:+.3f} [{n.low:+.3f}, {n.high:+.3f}]"

    rows = [
        BEGIN,
        "| program | IR score | 95% CI | floor-normalised [95% CI] | answers cut off |",
        "|---|---|---|---|---|",
        f"| floor: constant answer `{floor.winner}` (no LM) | {floor.floor:.3f} | | +0.000 | |",
        f"| baseline (zero-shot) | {base.score.mean:.3f} | [{base.score.low:.3f}, "
        f"{base.score.high:.3f}] | {normalised(base)} | {base.truncated_rate:.0%} |",
        f"| MIPROv2 (`mipro-small`) | {opt.score.mean:.3f} | [{opt.score.low:.3f}, "
        f"{opt.score.high:.3f}] | {normalised(opt)} | {opt.truncated_rate:.0%} |",
        f"| gain (paired, {gain.n} test tasks) | {diff.mean:+.3f} | "
        f"[{diff.low:+.3f}, {diff.high:+.3f}], p = {gain.p_value:.3f} | "
        f"{diff.mean / (1 - floor.floor):+.3f} | "
        f"wins/losses/ties {gain.wins}/{gain.losses}/{gain.ties} |",
        "",
        f"Floor: the best of {len(floor.candidates)} constant answers ("
        + ", ".join(f"{c.name} {c.mean:.3f}" for c in floor.candidates)
        + f") on the same {floor.n} test tasks; floor-normalised = (score − floor) / (1 − floor). "
        f"Intervals: crossed bootstrap with one seed (t, {diff.df:.0f} df).",
        "",
        f"Recorded answers that ended on their own (`finish_reason: stop`): {ended} of {total} "
        f"({ended / total:.1%}); a cut-off answer scores 0.",
        END,
    ]
    return "\n".join(rows)


MEASUREMENTS = ROOT / "docs" / "measurements" / "demo.md"


def published_table(page: Path = MEASUREMENTS) -> str:
    """The demo table as published (docs/measurements/demo.md, between the markers)."""
    text = page.read_text(encoding="utf-8")
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    return text[start:stop]


def replay_offline(workdir: Path):
    """Run the demo experiment offline against a fresh import of the committed recording."""
    from liftdspy.experiments.config import load_config
    from liftdspy.experiments.runner import run_experiment
    from liftdspy.lm.store import RecordingStore, ensure_imported

    store = workdir / "demo-store"
    ensure_imported(RECORDING, RecordingStore(store))
    config = load_config(
        DEMO,
        [
            "lm.recorder.mode=offline",
            f"lm.recorder.path={store}",
            f"tracking.uri=sqlite:///{workdir / 'mlflow.db'}",
        ],
    )
    return run_experiment(config, config_path=DEMO)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        outcome = replay_offline(Path(tmp))
    sys.stdout.write(render_table(outcome, recording_endings()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
