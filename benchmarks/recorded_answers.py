"""Completeness, tokens and seconds of the NL->IR answers in a demo recording at a git revision.

    python benchmarks/recorded_answers.py 0bde857 [HEAD ...]

Reads `cache/recordings/demo.jsonl` as committed at each revision (the real calls of the live
demo on the engine of that revision). An answer is complete when the model ended it
(`finish_reason == "stop"`, not closed by the engine's budget) and it parses strictly as an
`IntermediateRepresentation` (`json.loads`, no repair). Seconds are the recorded call latencies
(on whatever machine recorded them). Only NL->IR answers count (requests whose response format is
the `ir` output schema); MIPROv2's instruction proposals in the same recording are left out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from pydantic import ValidationError

from liftdspy.ir import IntermediateRepresentation


def complete(response: dict) -> bool:
    text = "".join(part.get("text", "") for part in response["message"]["parts"])
    closed = (response.get("provider_data") or {}).get("local", {}).get("budget_closed", False)
    if response["finish_reason"] != "stop" or closed:
        return False
    try:
        IntermediateRepresentation.model_validate(json.loads(text)["ir"])
    except (ValueError, KeyError, TypeError, ValidationError):
        return False
    return True


def is_nl_to_ir(request: dict) -> bool:
    schema = ((request.get("config") or {}).get("response_format") or {}).get("schema") or {}
    return "ir" in (schema.get("properties") or {})


def forced_tokens(response: dict) -> int:
    return (response.get("provider_data") or {}).get("local", {}).get("forced_tokens") or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="+")
    args = parser.parse_args()
    print(
        "| revision | answers | complete+valid | cut at max_tokens | s/answer (mean) | "
        "tokens/answer (mean) | tokens/complete answer | forced share |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for revision in args.revisions:
        text = subprocess.run(
            ["git", "show", f"{revision}:cache/recordings/demo.jsonl"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        rows = [r for r in rows if is_nl_to_ir(r["request"])]
        done = [r for r in rows if complete(r["response"])]
        cut = sum(r["response"]["finish_reason"] == "length" for r in rows)
        tokens = [r["response"]["usage"]["output_tokens"] for r in rows]
        done_tokens = [r["response"]["usage"]["output_tokens"] for r in done]
        done_mean = f"{statistics.mean(done_tokens):.0f}" if done_tokens else "-"
        print(
            f"| {revision} | {len(rows)} | {len(done)}/{len(rows)} "
            f"({100 * len(done) / len(rows):.0f}%) | {cut} "
            f"| {statistics.mean(r['latency_s'] for r in rows):.1f} "
            f"| {statistics.mean(tokens):.0f} | {done_mean} "
            f"| {100 * sum(forced_tokens(r['response']) for r in rows) / sum(tokens):.0f}% |"
        )


if __name__ == "__main__":
    main()
