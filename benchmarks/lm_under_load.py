"""Decode and prefill speed of the embedded model with and without a concurrent CPU load.

    python benchmarks/lm_under_load.py [--burners 2] [--threads 2]

For each OpenMP wait policy (libgomp's default spin, and PASSIVE, which the engine sets) at
`--threads` threads, and for one thread (what each of the engine's lanes runs), a fresh process
loads SmolLM2-135M, prefills a ~500-token prompt and decodes 40 tokens greedily; once on its own
and once beside `--burners` busy-looping processes this script starts (and stops). The target:
a load slows a call in proportion (about 2x with 2 burners on 2 cores), not tenfold.
The machine's own load (shown) adds to the burners: shared machines make these numbers noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

PROBE = """
import json, sys, time
import numpy as np
from liftdspy.lm.local_engine import require_llama_cpp
from liftdspy.lm.models import locate_model
llama_cpp = require_llama_cpp()
n = int(sys.argv[1])
llama = llama_cpp.Llama(model_path=str(locate_model("smollm2-135m").path), n_ctx=2048,
                        n_threads=n, n_threads_batch=n, verbose=False)
tokens = llama.tokenize(b"Write a function that merges two sorted lists of integers. " * 45)
started = time.perf_counter(); llama.eval(tokens); prefill = time.perf_counter() - started
started = time.perf_counter()
for _ in range(40):
    logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
    llama.eval([int(logits.argmax())])
decode = time.perf_counter() - started
print(json.dumps({"prefill": len(tokens) / prefill, "decode": 40 / decode}))
"""

BURNER = "while True: pass"


def measure(policy: str | None, threads: int, burners: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    else:
        env["GOMP_SPINCOUNT"] = "300000"  # libgomp's own default, set so the engine keeps it
    load = [subprocess.Popen([sys.executable, "-c", BURNER]) for _ in range(burners)]
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, str(threads)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
    finally:
        for process in load:
            process.kill()
            process.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"SmolLM2-135M, {os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.1f}"
    )
    columns = ("threads, OpenMP wait", "burners", "prefill tok/s", "decode tok/s", "slowdown")
    for column in columns:
        table.add_column(column, justify="right")
    configurations = (
        (None, args.threads, f"spin (libgomp default), {args.threads} threads"),
        ("PASSIVE", args.threads, f"PASSIVE, {args.threads} threads (one lane)"),
        ("PASSIVE", 1, "1 thread (each lane, the default)"),
    )
    for policy, threads, label in configurations:
        idle = measure(policy, threads, 0)
        busy = measure(policy, threads, args.burners)
        for burners, result in ((0, idle), (args.burners, busy)):
            table.add_row(
                label,
                str(burners),
                f"{result['prefill']:.0f}",
                f"{result['decode']:.1f}",
                f"{idle['decode'] / result['decode']:.1f}x",
            )
    Console().print(table)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
