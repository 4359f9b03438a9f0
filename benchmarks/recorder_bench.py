"""Recorder benchmark: lookup latency and the speed-up of a replayed evaluation over a live one.

    python benchmarks/recorder_bench.py           # scripted engine sleeping --delay s per call
    python benchmarks/recorder_bench.py --local   # the embedded llama.cpp model (`local` extra)

Measures, in a fresh temporary store:
1. `RecordingStore.get` of a stored key, of a missing key, and a full `RecordingEngine.complete`
   replay (canonical JSON + sha256 key + SQLite read + Response rebuild), p50/p99 over --lookups.
2. A `dspy.Evaluate` of `dspy.Predict("question -> answer")` over --examples questions: once live
   (mode record), once replayed (mode offline, zero model calls), with the wall time of each.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

import dspy
from dspy.lm15 import Config, Message, Request, Response, TextPart, Usage
from rich.console import Console
from rich.table import Table

from liftdspy.lm import LMConfig, RecorderConfig, RecordingEngine, build_lm, recorder_of


class ScriptedSleepEngine:
    """Benchmark-only engine: a fixed answer after a sleep that stands in for model latency."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self._lock = threading.Lock()

    def identity(self) -> dict[str, str]:
        return {"kind": "scripted", "model": "scripted-sleep", "delay": str(self.delay_s)}

    def complete(self, request: Request) -> Response:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay_s)
        question = re.search(r"What is (\d+) \+ (\d+)", request.messages[-1].text or "")
        answer = int(question[1]) + int(question[2]) if question else 42
        text = f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"
        return Response(
            id=None,
            model="scripted-sleep",
            message=Message.assistant([TextPart(text)]),
            finish_reason="stop",
            usage=Usage(input_tokens=200, output_tokens=8, total_tokens=208),
        )

    def close(self) -> None:
        pass


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def _request(i: int) -> Request:
    # A DSPy-sized prompt (~1.5 KB) so the key hashes realistic text.
    text = f"[[ ## question ## ]]\nQuestion {i}: " + "write a function that sorts a list. " * 40
    return Request(
        model="local/scripted-sleep",
        system="Your input fields are: question. Your output fields are: answer.",
        messages=(Message.user(text),),
        config=Config(temperature=0.0, max_tokens=512),
    )


def bench_lookups(
    store_dir: Path, count: int, lookups: int
) -> list[tuple[str, float, float, float]]:
    recorder = RecordingEngine(ScriptedSleepEngine(0.0), store_dir, "record")
    requests = [_request(i) for i in range(count)]
    for request in requests:
        recorder.complete(request)
    keys = list(recorder.store.keys())
    replay = RecordingEngine(ScriptedSleepEngine(0.0), recorder.store, "offline")

    def timed(fn, items) -> tuple[float, float, float]:
        wall, cpu = [], []
        for item in items:
            start, start_cpu = time.perf_counter(), time.thread_time()
            fn(item)
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)
        return (*_percentiles(wall), _percentiles(cpu)[1])

    picks = [keys[(i * 7919) % len(keys)] for i in range(lookups)]
    rows = [
        (f"store.get hit ({count} entries)", *timed(recorder.store.get, picks)),
        ("store.get miss", *timed(recorder.store.get, ["0" * 64] * lookups)),
        (
            "RecordingEngine.complete replay",
            *timed(replay.complete, [requests[(i * 31) % count] for i in range(lookups)]),
        ),
    ]
    assert replay.inner.calls == 0
    return rows


def bench_evaluation(
    store_dir: Path, examples: int, delay: float, local: bool
) -> list[tuple[str, float, int, float]]:
    devset = [
        dspy.Example(
            question=f"What is {i} + {i}? Answer with a number.", answer=str(2 * i)
        ).with_inputs("question")
        for i in range(examples)
    ]
    program = dspy.Predict("question -> answer")
    rows = []
    for mode in ("record", "offline"):
        if local:
            config = LMConfig(
                kind="local",
                model="smollm2-135m",
                max_tokens=32,
                n_threads=2,
                recorder=RecorderConfig(mode=mode, path=store_dir),
            )
            lm = build_lm(config)
        else:
            config = LMConfig(
                kind="local", model="scripted", recorder=RecorderConfig(mode=mode, path=store_dir)
            )
            lm = build_lm(config, engine=ScriptedSleepEngine(delay))
        evaluate = dspy.Evaluate(
            devset=devset, metric=lambda e, p, t=None: e.answer == p.answer, num_threads=1
        )
        start = time.perf_counter()
        with dspy.context(lm=lm):
            score = evaluate(program).score
        elapsed = time.perf_counter() - start
        calls = recorder_of(lm).stats().calls
        rows.append((f"evaluate {mode} ({examples} examples)", elapsed, calls, score))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.5, help="scripted live latency (s)")
    parser.add_argument("--local", action="store_true", help="evaluate with the embedded model")
    args = parser.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory() as tmp:
        lookup_rows = bench_lookups(Path(tmp) / "lookups", args.entries, args.lookups)
        eval_rows = bench_evaluation(Path(tmp) / "eval", args.examples, args.delay, args.local)

    table = Table(title="Recorder lookup latency (target < 1 ms)")
    for column in ("operation", "p50 ms", "p99 ms", "p99 CPU ms"):
        table.add_column(column, justify="right" if column != "operation" else "left")
    for name, p50, p99, p99_cpu in lookup_rows:
        table.add_row(name, f"{p50:.3f}", f"{p99:.3f}", f"{p99_cpu:.3f}")
    console.print(table)

    live_s, replay_s = eval_rows[0][1], eval_rows[1][1]
    engine = "embedded smollm2-135m" if args.local else f"scripted, {args.delay}s per call"
    table = Table(title=f"Replayed vs live evaluation ({engine})")
    for column in ("run", "wall s", "model calls", "score %"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for name, seconds, calls, score in eval_rows:
        table.add_row(name, f"{seconds:.3f}", str(calls), f"{score:.1f}")
    table.add_row("speed-up", f"{live_s / replay_s:.0f}x", "", "")
    console.print(table)


if __name__ == "__main__":
    main()
