"""Complete NL->IR answers per minute with 1, 2, 4 and 8 requests in flight, on the same prompts.

    # the embedded engine (batched decoding), DSPy's JSONAdapter, 8 test prompts
    nice -n 10 python benchmarks/answers_per_minute.py --adapter json --examples 8
    # another adapter of liftdspy.programs.adapters.build_adapter, some concurrencies only
    python benchmarks/answers_per_minute.py --adapter compact --concurrency 1 4
    # the peer: the same requests, 8 in flight, through liftdspy's OpenAIEngine (recorder off)
    python benchmarks/answers_per_minute.py --peer vllm --base-url http://127.0.0.1:8000/v1
    # one table from several runs
    python benchmarks/answers_per_minute.py --table /tmp/json.json /tmp/vllm.json

Every run asks the first `--examples` prompts of the core dataset's test split through
`dspy.Predict(NLToIRSignature)` (with `--demos` labelled train examples as demos), greedy, with N
threads each sending one request at a time (`--concurrency`, default 1 2 4 8). An answer is
*complete+valid* when the engine says the model ended it (`finish_reason == "stop"`, not closed
by the local engine's budget), its text is JSON as it stands (`json.loads`, no repair), the
adapter parses it and its `ir` validates as an `IntermediateRepresentation`.

Columns: prompt and output tokens are means over answers; sampled/forced splits the output
tokens into those the model sampled and those the local engine's grammar forced (jump-forward and
budget close; unknown for a server); s/answer is wall time / answers; answers/min counts complete
ones; load is the 1-minute load average when the row ended (the machine may be shared).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure the liftdspy of this checkout, not an installed one
CONCURRENCY = (1, 2, 4, 8)


class CapturingEngine:
    """Wraps an engine and keeps, per thread, the responses of the call in progress."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.supports_response_schema = inner.supports_response_schema
        self.supports_function_calling = inner.supports_function_calling
        self.supports_reasoning = inner.supports_reasoning
        self.supported_params = inner.supported_params
        self._local = threading.local()

    def responses(self) -> list[Any]:
        if not hasattr(self._local, "responses"):
            self._local.responses = []
        return self._local.responses

    def complete(self, request: Any) -> Any:
        response = self.inner.complete(request)
        self.responses().append(response)
        return response

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        self.inner.close()


def build_adapter(name: str) -> Any:
    import dspy

    if name == "json":
        return dspy.JSONAdapter()
    try:
        from liftdspy.programs.adapters import build_adapter as build
    except ImportError as exc:
        raise SystemExit(
            f"--adapter {name}: liftdspy.programs.adapters.build_adapter is not in this checkout "
            f"({exc}); use --adapter json"
        ) from None
    return build(name)


def questions(n_examples: int, n_demos: int) -> tuple[list[str], list[Any]]:
    import dspy

    from liftdspy.datasets.loader import load_tasks

    tasks = load_tasks([ROOT / "datasets" / "core"])
    test = [t.prompt for t in tasks if t.split == "test"][:n_examples]
    demos = [
        dspy.Example(prompt=t.prompt, ir=t.ir).with_inputs("prompt")
        for t in tasks
        if t.split == "train"
    ][:n_demos]
    return test, demos


def strictly_valid(adapter: Any, text: str) -> bool:
    """JSON as written (no repair), parsed by the adapter, an IR that validates."""
    from pydantic import BaseModel, ValidationError

    from liftdspy.ir import IntermediateRepresentation
    from liftdspy.programs.signatures import NLToIRSignature

    try:
        json.loads(text)
        value = adapter.parse(NLToIRSignature, text)["ir"]
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        IntermediateRepresentation.model_validate(value)
    except (ValueError, KeyError, TypeError, ValidationError, Exception):
        return False
    return True


def make_lm(args: argparse.Namespace) -> tuple[Any, CapturingEngine, Any]:
    import dspy

    if args.peer == "vllm":
        from liftdspy.lm.config import LMConfig, build_engine

        config = LMConfig(
            kind="openai",
            model=args.model,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            max_tokens=args.max_tokens,
            max_string_chars=args.max_string_chars,
            max_array_items=args.max_array_items,
            timeout=900,
            recorder={"mode": "off"},
        )
        inner = build_engine(config)
    else:
        from liftdspy.lm.local import LocalEngine

        inner = LocalEngine(
            n_threads=args.threads,
            n_ctx=args.n_ctx,
            max_string_chars=args.max_string_chars,
            max_array_items=args.max_array_items,
            max_batch=max(args.concurrency),
        )
    engine = CapturingEngine(inner)
    lm = dspy.LM(
        f"{'openai' if args.peer else 'local'}/{args.model}",
        engine=engine,
        cache=False,
        temperature=0.0,
        max_tokens=args.max_tokens,
        num_retries=0,
    )
    return lm, engine, inner


def run_row(args: argparse.Namespace, lm: Any, engine: CapturingEngine, threads: int) -> dict:
    import dspy

    from liftdspy.programs.signatures import NLToIRSignature

    prompts, demos = questions(args.examples, args.demos)
    adapter = build_adapter(args.adapter)

    def ask(prompt: str) -> dict[str, Any]:
        predict = dspy.Predict(NLToIRSignature)
        predict.demos = demos
        engine.responses().clear()
        started = time.perf_counter()
        error = None
        with dspy.context(lm=lm, adapter=adapter):
            try:
                predict(prompt=prompt)
            except Exception as exc:
                error = f"{type(exc).__name__}: {str(exc)[:160]}"
        seconds = time.perf_counter() - started
        calls = list(engine.responses())
        last = calls[-1] if calls else None
        local = ((last.provider_data or {}).get("local") or {}) if last is not None else {}
        finish = last.finish_reason if last is not None else "error"
        text = last.text if last is not None else ""
        valid = strictly_valid(adapter, text)
        output = last.usage.output_tokens if last is not None else 0
        forced = local.get("forced_tokens") if local else None
        return {
            "prompt": prompt,
            "calls": len(calls),
            "seconds": round(seconds, 3),
            "prompt_tokens": last.usage.input_tokens if last is not None else 0,
            "output_tokens": output,
            "forced_tokens": forced,
            "finish_reason": finish,
            "budget_closed": bool(local.get("budget_closed")),
            "valid": valid,
            "complete": valid and finish == "stop" and not local.get("budget_closed"),
            "error": error,
        }

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        rows = list(pool.map(ask, prompts))
    wall = time.perf_counter() - started
    for row in rows:
        print(json.dumps(row), file=sys.stderr)
    return {
        "adapter": args.adapter,
        "engine": args.peer or "local",
        "concurrency": threads,
        "wall": round(wall, 2),
        "load": round(os.getloadavg()[0], 2),
        "rows": rows,
    }


def warm_up(args: argparse.Namespace, lm: Any) -> None:
    """One answer to a train prompt, not counted: loads the model, compiles the grammar and
    caches the shared prompt prefix, as in any run after its first call."""
    import dspy

    from liftdspy.datasets.loader import load_tasks
    from liftdspy.programs.signatures import NLToIRSignature

    prompt = next(t.prompt for t in load_tasks([ROOT / "datasets" / "core"]) if t.split == "train")
    with dspy.context(lm=lm, adapter=build_adapter(args.adapter)):
        try:
            dspy.Predict(NLToIRSignature)(prompt=prompt)
        except Exception as exc:
            print(f"warm-up: {type(exc).__name__}: {str(exc)[:160]}", file=sys.stderr)


COLUMNS = (
    "engine",
    "adapter",
    "in flight",
    "answers",
    "complete+valid",
    "prompt tok (mean)",
    "output tok (mean)",
    "sampled / forced",
    "s/answer",
    "complete answers/min",
    "load avg",
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
        result["adapter"],
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

    table = Table(title="Complete NL->IR answers per minute (greedy, SmolLM2-135M)")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for result in results:
        table.add_row(*cells(result))
    Console(width=180).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default="json", help="json, or a name for build_adapter")
    parser.add_argument("--peer", choices=("vllm",), default=None)
    parser.add_argument("--base-url", default=None, help="the peer's OpenAI-compatible /v1 URL")
    parser.add_argument("--api-key-env", default="VLLM_API_KEY")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--demos", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (local)")
    # The demo's settings (experiments/demo.yaml).
    parser.add_argument("--max-tokens", type=int, default=480)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--max-string-chars", type=int, default=40)
    parser.add_argument("--max-array-items", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--table", nargs="+", default=None, help="print one table from runs")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.table:
        results = [r for path in args.table for r in json.loads(Path(path).read_text())]
        print_table(results, args.markdown)
        return
    if args.peer and not args.base_url:
        parser.error("--peer vllm needs --base-url")
    if args.peer:
        args.concurrency = [8]  # the peer runs once, 8 in flight
    build_adapter(args.adapter)  # fail before loading anything
    lm, engine, _ = make_lm(args)
    warm_up(args, lm)
    results = []
    for threads in args.concurrency:
        results.append(run_row(args, lm, engine, threads))
        print_table(results[-1:], markdown=False)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print_table(results, args.markdown)


if __name__ == "__main__":
    main()
