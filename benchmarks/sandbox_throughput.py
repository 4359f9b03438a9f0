"""How many programs per second the sandbox checks on this machine.

    python benchmarks/sandbox_throughput.py [--programs 40] [--workers 1 2 4]

Prints the start-up cost of one empty sandbox run and the throughput of `run_many` on small
HumanEval-sized programs (one function, five assert tests, decided in the parent) for each
worker count, with full isolation (bubblewrap, seccomp; see `liftdspy sandbox isolation`), and
the load average before and after, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from rich.console import Console
from rich.table import Table

from liftdspy.sandbox import SandboxJob, detect_isolation, run_many, run_tests

PROGRAM = """
def running_max(numbers):
    best, out = None, []
    for n in numbers:
        best = n if best is None or n > best else best
        out.append(best)
    return out
"""
TESTS = [
    "assert running_max([]) == []",
    "assert running_max([1, 2, 3]) == [1, 2, 3]",
    "assert running_max([3, 2, 1]) == [3, 3, 3]",
    "assert running_max([1, 3, 2, 4]) == [1, 3, 3, 4]",
    "assert running_max([-1, -2]) == [-1, -1]",
]


def startup_seconds(repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_tests("", [])
        times.append(time.perf_counter() - started)
    return times


def throughput(programs: int, workers: int) -> tuple[float, float]:
    jobs = [SandboxJob(code=PROGRAM + f"\nVARIANT = {i}\n", tests=TESTS) for i in range(programs)]
    started = time.perf_counter()
    results = run_many(jobs, workers=workers)
    elapsed = time.perf_counter() - started
    if any(result.passed != len(TESTS) for result in results):
        raise SystemExit("benchmark program failed its tests: the sandbox is broken")
    return programs / elapsed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--startup-repeats", type=int, default=10)
    args = parser.parse_args()
    console = Console()

    isolation = detect_isolation()
    if not isolation.available:
        raise SystemExit(f"no isolation: {isolation.missing}")
    console.print(f"isolation: {isolation.describe()}")
    console.print(f"cpus: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    startup = startup_seconds(args.startup_repeats)
    console.print(
        f"start-up (empty program, {len(startup)} runs): median "
        f"{statistics.median(startup) * 1000:.0f} ms, min {min(startup) * 1000:.0f} ms"
    )
    table = Table(title=f"sandbox throughput, {args.programs} programs x {len(TESTS)} tests")
    table.add_column("workers", justify="right")
    table.add_column("programs/s", justify="right")
    table.add_column("wall s", justify="right")
    for workers in args.workers:
        rate, elapsed = throughput(args.programs, workers)
        table.add_row(str(workers), f"{rate:.1f}", f"{elapsed:.2f}")
    console.print(table)
    console.print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
