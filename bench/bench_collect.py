"""Benchmark: collecting this machine's inventory (issue 3: under 1 s and under 100 MB).

Runs ``patchpilot inventory collect`` in fresh processes (as an agent or a cron job
would) and reports wall time and peak resident memory of each, plus what was found.

    python -m bench.bench_collect
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

RUNS = 5


def main() -> None:
    """Collect RUNS times in child processes; print the figures."""
    times, peaks = [], []
    document = {}
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "patchpilot.cli", "inventory", "collect"],
                              capture_output=True, check=True)
        times.append(time.perf_counter() - started)
        # ru_maxrss of children is the largest child so far (KiB on Linux).
        peaks.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
        document = json.loads(done.stdout)
    by_eco: dict[str, int] = {}
    for p in document["packages"]:
        by_eco[p["ecosystem"]] = by_eco.get(p["ecosystem"], 0) + 1
    print(f"packages: {len(document['packages'])} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(by_eco.items()))})")
    print(f"collect (whole process, {RUNS} runs): median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s   (target < 1 s)")
    print(f"peak memory: {max(peaks) / 1024:.0f} MB   (target < 100 MB)")


if __name__ == "__main__":
    main()
