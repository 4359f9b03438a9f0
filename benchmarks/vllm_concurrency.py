"""Client concurrency against an OpenAI-compatible server: an evaluation with num_threads 1 vs N.

    liftdspy serve vllm --port 8000 &          # or any vLLM endpoint (Modal: liftdspy modal url)
    python benchmarks/vllm_concurrency.py --base-url http://127.0.0.1:8000/v1 \
        [--model smollm2-135m] [--api-key-env VLLM_API_KEY] [--threads 8] [--examples 8]

Runs IR->code (`dspy.Evaluate`) on the first core-dataset examples through `OpenAIEngine`
(recorder off: every call reaches the server), once with 1 thread and once with N, and prints
wall time, the peak of requests in flight on the server (vLLM's /metrics) and the tokens counted.
The target: N threads keep N requests in flight, and wall time drops accordingly.
"""

from __future__ import annotations

import argparse
import threading
import time
import urllib.request
from pathlib import Path

import dspy
from rich.console import Console
from rich.table import Table

from liftdspy.datasets.loader import load_tasks
from liftdspy.lm.config import LMConfig, build_lm, recorder_of
from liftdspy.programs.ir_to_code import IRToCode

ROOT = Path(__file__).resolve().parents[1]


def in_flight(base_url: str) -> float:
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        with urllib.request.urlopen(f"{root}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return float("nan")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("vllm:num_requests_running{", "vllm:num_requests_waiting{"))
    )


def run(args: argparse.Namespace, threads: int) -> tuple[float, float, int, int]:
    config = LMConfig(
        kind="openai",
        model=args.model,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        max_tokens=args.max_tokens,
        timeout=600,
        recorder={"mode": "off"},
    )
    lm = build_lm(config)
    rows = load_tasks([ROOT / "datasets" / "core"])[: args.examples]
    devset = [dspy.Example(ir=row.ir).with_inputs("ir") for row in rows]
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            value = in_flight(args.base_url)
            if value == value:  # not NaN
                peak[0] = max(peak[0], value)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        dspy.Evaluate(
            devset=devset,
            metric=lambda example, prediction, trace=None: bool(prediction.parses),
            num_threads=threads,
            display_progress=False,
        )(IRToCode())
    wall = time.perf_counter() - start
    done.set()
    sampler.join(timeout=5)
    stats = recorder_of(lm).stats()
    if stats.calls != len(devset):
        raise SystemExit(
            f"only {stats.calls} of {len(devset)} calls reached {args.base_url}: no table from a "
            "failed run (see the errors above)"
        )
    return wall, peak[0], stats.live_input_tokens, stats.live_output_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--api-key-env", default="VLLM_API_KEY")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()
    root = args.base_url.rstrip("/").removesuffix("/v1")
    try:
        urllib.request.urlopen(f"{root}/health", timeout=10).close()
    except OSError as exc:
        raise SystemExit(f"{root}/health does not answer ({exc}); start the server first") from None

    table = Table(title=f"IR->code on {args.examples} examples at {args.base_url}")
    for column in ("num_threads", "wall s", "peak in flight", "input tok", "output tok"):
        table.add_column(column, justify="right")
    results = {}
    for threads in (1, args.threads):
        wall, peak, tokens_in, tokens_out = run(args, threads)
        results[threads] = wall
        table.add_row(str(threads), f"{wall:.1f}", f"{peak:.0f}", str(tokens_in), str(tokens_out))
    Console().print(table)
    Console().print(
        f"speed-up {results[1] / results[args.threads]:.2f}x with {args.threads} threads"
    )


if __name__ == "__main__":
    main()
