"""Prompt and output tokens of zero-shot NL->IR answers per adapter, on the embedded model.

    nice -n 10 .venv/bin/python benchmarks/adapter_tokens.py  # json:full vs compact:lean
    nice -n 10 .venv/bin/python benchmarks/adapter_tokens.py --cases json:full baml:content

The first `--examples` prompts of the core test split (the demo's eval split) go through the
NL->IR program built with each `adapter:ir_output` case, live (recorder off), greedy, one call at a
time, with the demo's LM settings (experiments/demo.yaml: max_tokens, n_ctx, decoding caps). An
answer is *complete* when the model ended it (not cut off, not closed by the engine's budget) and
the program parsed it into an IR. Prints one table; docs/measurements/adapters.md holds a run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class CapturingEngine:
    """Wraps an engine and keeps every response (DSPy's LM does not hand them back)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.responses: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def complete(self, request: Any) -> Any:
        response = self.inner.complete(request)
        self.responses.append(response)
        return response


def run_case(adapter: str, ir_output: str, prompts: list[str], config: Any) -> dict[str, Any]:
    import dspy

    from liftdspy.lm.local_engine import LocalEngine
    from liftdspy.programs import build_program
    from liftdspy.programs.adapters import build_adapter

    engine = CapturingEngine(LocalEngine(**config.lm.engine_kwargs()))
    lm = dspy.LM(
        f"local/{config.lm.model}",
        engine=engine,
        cache=False,
        temperature=config.lm.temperature,
        max_tokens=config.lm.max_tokens,
    )
    program = build_program("nl_to_ir", adapter=adapter, ir_output=ir_output)  # type: ignore[arg-type]
    rows = []
    for prompt in prompts:
        started = time.perf_counter()
        with dspy.context(lm=lm, adapter=build_adapter(adapter)):
            prediction = program(prompt=prompt)
        response = engine.responses[-1]
        rows.append(
            {
                "prompt_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
                "complete": prediction.ir is not None,
                "seconds": time.perf_counter() - started,
            }
        )
    complete = [row for row in rows if row["complete"]]
    return {
        "case": f"{adapter}:{ir_output}",
        "prompt": statistics.median(row["prompt_tokens"] for row in rows),
        "output": statistics.median(row["output_tokens"] for row in complete) if complete else None,
        "output_max": max((row["output_tokens"] for row in complete), default=None),
        "complete": f"{len(complete)}/{len(rows)}",
        "seconds": statistics.median(row["seconds"] for row in rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=["json:full", "compact:lean"])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from liftdspy.experiments.config import load_config
    from liftdspy.experiments.runner import select_tasks

    config = load_config(ROOT / "experiments" / "demo.yaml")
    prompts = [task.prompt for task in select_tasks(config).eval[: args.examples]]
    results = [run_case(*case.split(":"), prompts, config) for case in args.cases]
    print(
        "| adapter:ir_output | prompt tokens (median) | output tokens per complete IR "
        "(median / max) | complete | s/answer (median) |"
    )
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['case']} | {r['prompt']:.0f} | {r['output']} / {r['output_max']} | "
            f"{r['complete']} | {r['seconds']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
