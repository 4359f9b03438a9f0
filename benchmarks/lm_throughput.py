"""Decode throughput of the embedded model: free text vs XGrammar vs llama.cpp's own GBNF grammar.

    python benchmarks/lm_throughput.py [--model smollm2-135m] [--max-tokens 200] [--runs 3]

Every mode decodes the same NL->IR prompts greedily from the same llama.cpp object. The grammar
modes constrain the output to `ir_json_schema()`. Decode speed counts tokens after the first
(prompt evaluation excluded). The target: XGrammar-constrained >= 90% of free decoding.
The last row is the engine's own loop (`LocalEngine.generate`: XGrammar mask, jump-forward over
forced text, budget-aware close), counting every output token, forced ones included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from liftdspy.ir import ir_json_schema
from liftdspy.lm.grammar import TokenMask, schema_spec
from liftdspy.lm.local_chat import ChatTurn
from liftdspy.lm.local_engine import LoadedModel, LocalEngine

SYSTEM = (
    "You turn a request for a Python function into a JSON intermediate representation with "
    "the function's intent, signature (name, parameters, returns), effects, assertions and holes."
)
PROMPTS = [
    "Write a function that returns the sum of two integers.",
    "Write a function is_palindrome(s) that checks whether a string reads the same backwards.",
    "Write a function that counts the vowels in a string.",
]


@dataclass
class Run:
    tokens: int
    decode_seconds: float
    mask_seconds: float


def decode(model: LoadedModel, prompt: str, mode: str, max_tokens: int, compiled, gbnf) -> Run:
    llama = model.llama
    tokens = model.tokenize_prompt(
        model.template.render([ChatTurn("system", SYSTEM), ChatTurn("user", prompt)])
    )
    mask = TokenMask(compiled, model.n_vocab) if mode == "xgrammar" else None
    out = 0
    first = started = time.perf_counter()
    generator = llama.generate(
        tokens,
        temp=0.0,
        min_p=0.0,
        repeat_penalty=1.0,
        logits_processor=[mask] if mask else None,
        grammar=gbnf if mode == "gbnf" else None,
    )
    for token in generator:
        if out == 0:
            first = time.perf_counter()
        if mask is not None:
            mask.accept(token)
        out += 1
        # Free text stops only at the token limit, so every mode decodes comparable lengths.
        if out >= max_tokens or (mask is not None and mask.is_terminated()):
            break
        if mode == "gbnf" and token in model.stop_token_ids:
            break
    generator.close()
    ended = time.perf_counter()
    del started
    return Run(out, ended - first, mask.mask_seconds if mask else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--model-path", default=None)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    from llama_cpp import LlamaGrammar

    engine = LocalEngine(model=args.model, model_path=args.model_path)
    model = engine.loaded()
    started = time.perf_counter()
    compiled = model.grammar_compiler().compile(schema_spec(ir_json_schema()))
    xgrammar_compile = time.perf_counter() - started
    started = time.perf_counter()
    gbnf = LlamaGrammar.from_json_schema(json.dumps(ir_json_schema()), verbose=False)
    gbnf_compile = time.perf_counter() - started

    decode(model, PROMPTS[0], "free", 4, compiled, gbnf)  # warm up
    rows = {}
    for mode in ("free", "xgrammar", "gbnf"):
        runs = [
            decode(model, prompt, mode, args.max_tokens, compiled, gbnf)
            for _ in range(args.runs)
            for prompt in PROMPTS
        ]
        tokens = sum(r.tokens - 1 for r in runs)
        seconds = sum(r.decode_seconds for r in runs)
        rows[mode] = {
            "tokens": tokens,
            "tok_s": tokens / seconds,
            "mask_ms": 1000 * sum(r.mask_seconds for r in runs) / max(tokens, 1),
            "per_prompt": [r.tokens for r in runs],
            "spread": statistics.pstdev([(r.tokens - 1) / r.decode_seconds for r in runs]),
        }

    spec = schema_spec(ir_json_schema())
    runs = [
        engine.generate(
            [ChatTurn("system", SYSTEM), ChatTurn("user", prompt)],
            spec=spec,
            max_tokens=args.max_tokens,
        )
        for _ in range(args.runs)
        for prompt in PROMPTS
    ]
    tokens = sum(g.output_tokens for g in runs)
    seconds = sum(g.decode_seconds for g in runs)
    rows["engine"] = {
        "tokens": tokens,
        "tok_s": tokens / seconds,
        "mask_ms": 1000 * sum(g.mask_seconds for g in runs) / max(tokens, 1),
        "per_prompt": [g.output_tokens for g in runs],
        "spread": statistics.pstdev([g.output_tokens / g.decode_seconds for g in runs]),
        "forced": sum(g.forced_tokens for g in runs),
    }

    table = Table(
        title=f"{engine.located.name}, {engine.n_threads} threads, "
        f"max {args.max_tokens} tokens x {len(PROMPTS) * args.runs} prompts"
    )
    for column in ("mode", "tokens", "tok/s", "± (per prompt)", "vs free", "mask ms/token"):
        table.add_column(column, justify="right")
    free = rows["free"]["tok_s"]
    labels = {
        "free": "unconstrained",
        "xgrammar": "XGrammar (bitmask)",
        "gbnf": "llama.cpp GBNF",
        "engine": f"engine loop ({100 * rows['engine']['forced'] / max(tokens, 1):.0f}% forced)",
    }
    for mode, row in rows.items():
        table.add_row(
            labels[mode],
            str(row["tokens"]),
            f"{row['tok_s']:.1f}",
            f"{row['spread']:.1f}",
            f"{100 * row['tok_s'] / free:.0f}%",
            f"{row['mask_ms']:.3f}" if mode in {"xgrammar", "engine"} else "-",
        )
    console = Console()
    console.print(table)
    console.print(
        f"grammar compile: XGrammar {xgrammar_compile:.2f} s (incl. tokenizer info), "
        f"GBNF {gbnf_compile:.2f} s; tokens per prompt: "
        + ", ".join(f"{m}={r['per_prompt']}" for m, r in rows.items())
    )


if __name__ == "__main__":
    main()
