"""Benchmark: agentless SSH scans of many targets against real sshd servers on loopback.

Starts ``--servers`` sshd processes (each its own host key, port and config, 127.0.0.1
only), scans ``--per-server`` targets on each (the same host repeated, so 5 × 10 = 50
targets by default) with ``--max-concurrent`` hosts at a time, and prints the total time,
the peak number of SSH sessions open at once (it must never exceed the limit) and the
count of hosts per status.  Needs root and /usr/sbin/sshd (see tests/sshd.py).

    python -m bench.bench_ssh [--servers 5] [--per-server 10] [--max-concurrent 10]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.sshd import LOOPBACK, SshServer, keygen, sshd_problem, start_sshd

from patchpilot.inventory.transports.ssh import (
    SessionGauge,
    SshOptions,
    SshTarget,
    scan_hosts_sync,
)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=5)
    parser.add_argument("--per-server", type=int, default=10)
    parser.add_argument("--max-concurrent", type=int, default=10)
    parser.add_argument("--no-python", action="store_true",
                        help="skip the system Python packages")
    args = parser.parse_args()
    problem = sshd_problem()
    if problem:
        raise SystemExit(f"cannot run: {problem}")
    folder = Path(tempfile.mkdtemp(prefix="pp-bench-ssh-"))
    servers: list[SshServer] = []
    try:
        client_key = keygen(folder / "client_ed25519")
        servers = [start_sshd(folder / f"sshd{i}", client_key=client_key)
                   for i in range(args.servers)]
        known_hosts = folder / "known_hosts"
        known_hosts.write_text("".join(s.known_hosts_line() for s in servers))
        targets = [SshTarget(LOOPBACK, s.port, "root")
                   for s in servers for _ in range(args.per_server)]
        options = SshOptions(identities=(client_key,), use_agent=False,
                             known_hosts=known_hosts, max_concurrent=args.max_concurrent,
                             python=not args.no_python)
        gauge = SessionGauge()
        started = time.perf_counter()
        results = scan_hosts_sync(targets, options, gauge)
        total = time.perf_counter() - started
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    statuses = Counter(r.status.value for r in results)
    packages = sum(len(r.inventory.packages) for r in results if r.inventory)
    per_host = sorted(r.seconds for r in results)
    print(f"targets          {len(targets)} ({args.servers} sshd × {args.per_server})")
    print(f"max concurrent   {args.max_concurrent}")
    print(f"total            {total:.2f} s  ({len(targets) / total:.1f} hosts/s)")
    print(f"per host         median {per_host[len(per_host) // 2]:.2f} s, "
          f"max {per_host[-1]:.2f} s")
    print(f"packages read    {packages:,}")
    print(f"peak sessions    {gauge.peak}"
          + ("  (within the limit)" if gauge.peak <= args.max_concurrent
             else "  EXCEEDS THE LIMIT"))
    for status, count in sorted(statuses.items()):
        print(f"  {status:<16} {count}")
    if gauge.peak > args.max_concurrent:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
