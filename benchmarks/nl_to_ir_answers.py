"""Tokens, seconds and completeness of NL->IR answers, through DSPy, on one engine per run.

    # the embedded engine as it is in this tree (demo settings), and with jump-forward off
    python benchmarks/nl_to_ir_answers.py --label after --json /tmp/after.json
    python benchmarks/nl_to_ir_answers.py --label no-jump --no-jump-forward --json /tmp/nojf.json
    # the same on another checkout's engine (e.g. git main): PYTHONPATH=<that checkout>
    # the peer: DSPy's default path to llama-cpp-python's OpenAI server (its own grammar)
    python benchmarks/nl_to_ir_answers.py --engine server --label server --json /tmp/server.json
    # one table from several runs
    python benchmarks/nl_to_ir_answers.py --table /tmp/before.json /tmp/after.json /tmp/server.json

Every run asks the same questions: the first `--examples` prompts of the core dataset's test
split through `dspy.Predict(NLToIRSignature)` with DSPy's JSONAdapter, zero-shot and with the first
`--demos` labelled train examples as demos, greedy, one call at a time. An answer is *complete*
when the model ended it (`finish_reason == "stop"`, not closed by the engine's budget) and its
text parses with `json.loads` and validates as an `IntermediateRepresentation` — no JSON repair.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class CapturingEngine:
    """Wraps an engine and keeps every response with its wall time (DSPy's LM hides them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[Any, float]] = []
        self.supports_response_schema = inner.supports_response_schema
        self.supports_function_calling = inner.supports_function_calling
        self.supports_reasoning = inner.supports_reasoning
        self.supported_params = inner.supported_params

    def complete(self, request: Any) -> Any:
        started = time.perf_counter()
        response = self.inner.complete(request)
        self.calls.append((response, time.perf_counter() - started))
        return response

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        self.inner.close()


def strictly_valid(text: str) -> bool:
    from pydantic import ValidationError

    from liftdspy.ir import IntermediateRepresentation

    try:
        IntermediateRepresentation.model_validate(json.loads(text)["ir"])
    except (ValueError, KeyError, TypeError, ValidationError):
        return False
    return True


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


def local_lm(args: argparse.Namespace) -> tuple[Any, CapturingEngine]:
    import dspy

    from liftdspy.lm.local_engine import LocalEngine

    wanted = {
        "n_threads": args.threads,
        "n_ctx": 8192,
        "max_string_chars": args.max_string_chars,
        "max_array_items": args.max_array_items,
        "jump_forward": not args.no_jump_forward,
        "budget_close": not args.no_budget_close,
    }
    # Only what this checkout's engine knows (an older engine has no jump_forward).
    known = inspect.signature(LocalEngine.__init__).parameters
    engine = CapturingEngine(LocalEngine(**{k: v for k, v in wanted.items() if k in known}))
    lm = dspy.LM(
        "local/smollm2-135m",
        engine=engine,
        cache=False,
        temperature=0.0,
        max_tokens=args.max_tokens,
    )
    return lm, engine


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    from liftdspy.lm.models import locate_model

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(locate_model("smollm2-135m").path),
        "--model_alias",
        "smollm2-135m",
        "--n_ctx",
        "8192",
        "--n_threads",
        str(args.threads),
        "--n_threads_batch",
        str(args.threads),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{base}/models", timeout=1).read()
            return server, base
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"llama_cpp.server exited with {server.returncode}") from None
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("llama_cpp.server did not answer within 120 s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import dspy

    from liftdspy.programs.signatures import NLToIRSignature

    prompts, demos = questions(args.examples, args.demos)
    server = None
    if args.engine == "server":
        server, base = start_server(args)
        lm = dspy.LM(
            "openai/smollm2-135m",
            api_base=base,
            api_key="local",
            cache=False,
            temperature=0.0,
            max_tokens=args.max_tokens,
            num_retries=0,
        )
        engine = None
    else:
        lm, engine = local_lm(args)
    rows: list[dict[str, Any]] = []
    try:
        for shots in (0, len(demos)):
            predict = dspy.Predict(NLToIRSignature)
            predict.demos = demos[:shots]
            for prompt in prompts:
                before = len(lm.history)
                started = time.perf_counter()
                with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
                    try:
                        predict(prompt=prompt)
                    except Exception as exc:
                        print(f"  {type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr)
                seconds = time.perf_counter() - started
                rows.append(row(lm, engine, before, shots, seconds))
                print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    return {"label": args.label, "engine": args.engine, "settings": vars(args), "rows": rows}


def row(lm: Any, engine: CapturingEngine | None, before: int, shots: int, seconds: float) -> dict:
    entries = lm.history[before:]
    if engine is not None:
        calls = engine.calls[-len(entries) :] if entries else []
        response = calls[-1][0] if calls else None
        text = response.text if response is not None else ""
        finish = response.finish_reason if response is not None else "error"
        local = (response.provider_data or {}).get("local", {}) if response is not None else {}
        tokens = response.usage.output_tokens if response is not None else 0
    else:
        last = entries[-1] if entries else {}
        text = (last.get("outputs") or [""])[0]
        text = text if isinstance(text, str) else str(text.get("text", ""))
        raw = last.get("response")
        finish = _finish_reason(raw)
        tokens = int((last.get("usage") or {}).get("completion_tokens") or 0)
        local = {}
    closed = bool(local.get("budget_closed"))
    valid = strictly_valid(text)
    return {
        "shots": shots,
        "calls": len(entries),
        "seconds": round(seconds, 3),
        "output_tokens": tokens,
        "forced_tokens": local.get("forced_tokens", 0),
        "finish_reason": finish,
        "budget_closed": closed,
        "valid": valid,
        "complete": valid and finish == "stop" and not closed,
    }


def _finish_reason(raw: Any) -> str:
    for getter in (
        lambda r: r.finish_reason,
        lambda r: r.choices[0].finish_reason,
        lambda r: r["choices"][0]["finish_reason"],
    ):
        try:
            value = getter(raw)
        except (AttributeError, IndexError, KeyError, TypeError):
            continue
        if value:
            return str(value)
    return "unknown"


def table(paths: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title="NL->IR answers through DSPy's JSONAdapter (greedy, SmolLM2-135M)")
    columns = (
        "run",
        "answers",
        "complete+valid",
        "budget-closed",
        "s/answer (mean)",
        "tokens/answer (mean)",
        "tokens/complete answer",
        "forced share",
    )
    for column in columns:
        out.add_column(column, justify="right")
    for path in paths:
        data = json.loads(Path(path).read_text())
        rows = data["rows"]
        complete = [r for r in rows if r["complete"]]
        tokens = sum(r["output_tokens"] for r in rows)
        out.add_row(
            data["label"],
            str(len(rows)),
            f"{len(complete)}/{len(rows)} ({100 * len(complete) / max(len(rows), 1):.0f}%)",
            str(sum(r["budget_closed"] for r in rows)),
            f"{statistics.mean(r['seconds'] for r in rows):.2f}",
            f"{tokens / max(len(rows), 1):.0f}",
            f"{statistics.mean(r['output_tokens'] for r in complete):.0f}" if complete else "-",
            f"{100 * sum(r['forced_tokens'] for r in rows) / max(tokens, 1):.0f}%",
        )
    Console().print(out)
    print(f"load average at print time: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("local", "server"), default="local")
    parser.add_argument("--label", default="local")
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--demos", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=450)
    parser.add_argument("--max-string-chars", type=int, default=80)
    parser.add_argument("--max-array-items", type=int, default=2)
    parser.add_argument("--no-jump-forward", action="store_true")
    parser.add_argument("--no-budget-close", action="store_true")
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--table", nargs="+", default=None, help="print one table from runs")
    args = parser.parse_args()
    if args.table:
        table(args.table)
        return
    data = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1))
        table([args.json])


if __name__ == "__main__":
    main()
