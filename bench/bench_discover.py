"""Benchmark: discovery of a /24 of loopback hosts -- nmap's own time vs PatchPilot's.

Starts a real sshd on 127.0.0.1 and a small HTTP server on each of ``--http-hosts``
loopback addresses (127.0.0.1 … 127.0.0.N, one port), runs the same nmap PatchPilot runs
(``-sV``, ``--max-rate``) over 127.0.0.0/24 on those two ports, then parses the XML,
builds one inventory per live host and stores them all through the ingest into a fresh
SQLite database.  Prints the hosts, services and CPE packages found, nmap's time and
PatchPilot's overhead (parse + inventories + ingest); the overhead must stay a small part
of nmap's time.  Needs root, nmap and /usr/sbin/sshd.

    python -m bench.bench_discover [--http-hosts 32] [--rate 20000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.sshd import free_port, sshd_problem, start_sshd

from bench.common import cleanup, fresh_sqlite
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.discovery.nmap import NmapOptions, host_inventory, parse_nmap_xml, run_nmap
from patchpilot.scans.discovery import store_discovered


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        return


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-hosts", type=int, default=32)
    parser.add_argument("--rate", type=int, default=20000, help="nmap --max-rate")
    args = parser.parse_args()
    problem = sshd_problem() or (None if shutil.which("nmap") else "nmap is not installed")
    if problem:
        raise SystemExit(f"bench_discover: {problem}")
    folder = Path(tempfile.mkdtemp(prefix="pp-bench-discover-"))
    ssh = start_sshd(folder / "sshd")
    port = free_port()
    servers = []
    for n in range(1, args.http_hosts + 1):
        server = ThreadingHTTPServer((f"127.0.0.{n}", port),
                                     partial(_Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    url, db_folder = fresh_sqlite("discover")
    try:
        engine = make_engine(url)
        upgrade_schema(engine)
        run = run_nmap(["127.0.0.0/24"], NmapOptions(rate=args.rate,
                                                     ports=f"{ssh.port},{port}"))
        started = time.perf_counter()
        scan = parse_nmap_xml(run.xml, "nmap output")
        parsed = time.perf_counter()
        found = [host_inventory(h) for h in scan.hosts]
        built = time.perf_counter()
        stored = store_discovered(engine, found)
        done = time.perf_counter()
        services = sum(len(h.services) for h in scan.hosts)
        packages = sum(len(i.packages) for i in found)
        overhead = done - started
        print(f"discover 127.0.0.0/24 (ports {ssh.port},{port}; sshd on 1 host, HTTP on "
              f"{args.http_hosts}; --max-rate {args.rate}):")
        print(f"  live hosts {len(scan.hosts)}, open services {services}, CPE packages "
              f"{packages}, assets stored {sum(1 for s in stored if s.asset_id)}")
        print(f"  nmap                {run.seconds:8.2f} s  (nmap's own elapsed "
              f"{scan.elapsed} s, XML {len(run.xml) / 1024:.0f} KiB)")
        print(f"  parse XML           {(parsed - started) * 1000:8.1f} ms")
        print(f"  build inventories   {(built - parsed) * 1000:8.1f} ms")
        print(f"  ingest (SQLite)     {(done - built):8.2f} s  "
              f"({(done - built) / max(len(found), 1) * 1000:.1f} ms a host)")
        print(f"  PatchPilot overhead {overhead:8.2f} s = {overhead / run.seconds:.0%} of "
              f"nmap's time; total {run.seconds + overhead:.2f} s")
        engine.dispose()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        ssh.stop()
        cleanup(db_folder)
        cleanup(folder)


if __name__ == "__main__":
    main()
