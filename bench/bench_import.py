"""Import a ~15,000-item ``.nessus`` file end to end: parse, assets, findings, lifecycle,
priorities -- on SQLite and PostgreSQL -- and, when ``faraday-plugins`` is installed, parse
the same file with it in the same run.

The file is made by repeating the ReportHost blocks of the shared Nessus samples with new
host names and addresses (issue 14).  Each import runs in a child process, as a user's
``patchpilot import`` does, which prints its wall time and its peak resident memory.
Targets: < 3 s on SQLite, < 200 MB peak.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.common import DATA, ENRICHMENT_ROOTS, cleanup, fresh_sqlite, pg_schema

SAMPLES = ["tenable/nessus__nessus_many_vuln.xml", "tenable/nessus__nessus_with_cwe-.nessus",
           "tenable/nessus_was__nessus_was_one_vuln.xml"]
TARGET_ITEMS = 15_000

_HOST = re.compile(rb"<ReportHost\b.*?</ReportHost>", re.S)
_ITEM = re.compile(rb"<ReportItem\b")


def build_file(path: Path, target: int = TARGET_ITEMS) -> tuple[int, int]:
    """Write the benchmark's .nessus file; (hosts, items) in it."""
    blocks = []
    for relative in SAMPLES:
        blocks.extend(_HOST.findall((DATA / "reports" / relative).read_bytes()))
    hosts = items = 0
    with path.open("wb") as out:
        out.write(b'<?xml version="1.0" ?>\n<NessusClientData_v2>\n<Report name="bench">\n')
        while items < target:
            for block in blocks:
                n = hosts + 1
                name = f"bench-{n:05d}.example.net".encode()
                ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}".encode()
                block = re.sub(rb'<ReportHost name="[^"]*"', b'<ReportHost name="' + name
                               + b'"', block, count=1)
                block = re.sub(rb'(<tag name="host-ip">)[^<]*', rb"\g<1>" + ip, block)
                block = re.sub(rb'(<tag name="host-fqdn">)[^<]*', rb"\g<1>" + name, block)
                block = re.sub(rb'(<tag name="(?:hostname|netbios-name)">)[^<]*',
                               rb"\g<1>" + name.split(b".")[0], block)
                out.write(block + b"\n")
                hosts += 1
                items += len(_ITEM.findall(block))
                if items >= target:
                    break
        out.write(b"</Report>\n</NessusClientData_v2>\n")
    return hosts, items


def child_import(url: str, path: str) -> None:
    """In the child: import the file, print seconds, peak RSS and the summary as JSON."""
    from patchpilot.db.engine import make_engine
    from patchpilot.importers.apply import import_file

    engine = make_engine(url)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    summary = import_file(engine, Path(path))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(orjson.dumps({"seconds": seconds, "peak_mb": peak / 1024,
                        "before_mb": before / 1024, "summary": summary.to_dict()}).decode())


def _child(args: list[str], python: str = sys.executable,
           module: str = "bench.bench_import") -> dict:  # type: ignore[type-arg]
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(repo / "src")])}
    done = subprocess.run([python, "-m", module, *args], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr.strip()[-2000:]}")
    return orjson.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _load_knowledge(url: str) -> None:
    # CVE records, KEV and EPSS, so that completing the report's fields reads real rows.
    subprocess.run([sys.executable, "-m", "patchpilot.cli", "db", "update",
                    *[f"--from={root}" for root in ENRICHMENT_ROOTS]],
                   env={**os.environ, "PATCHPILOT_DATABASE_URL": url}, check=False,
                   capture_output=True)


def _report(label: str, result: dict) -> None:  # type: ignore[type-arg]
    s = result["summary"]
    print(f"  PatchPilot on {label:<10} {result['seconds']:6.2f} s   peak RSS "
          f"{result['peak_mb']:5.0f} MB (interpreter and libraries before the import: "
          f"{result['before_mb']:.0f} MB)   assets {s['assets']}, findings {s['findings']} "
          f"new, {s['informational']} informational")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", help="also run on this PostgreSQL server (a fresh schema)")
    parser.add_argument("--faraday-python", default=os.environ.get("FARADAY_PYTHON"),
                        help="a Python with faraday-plugins installed (default: "
                             "$FARADAY_PYTHON, else this one if it has it)")
    parser.add_argument("--runs", type=int, default=3,
                        help="imports on SQLite (the best is reported; default 3)")
    parser.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_import(*args.child)
        return
    folder = Path(tempfile.mkdtemp(prefix="pp-bench-import-"))
    try:
        path = folder / "estate.nessus"
        hosts, items = build_file(path)
        print(f"bench_import: {path.stat().st_size / 2**20:.1f} MB .nessus, {hosts} hosts, "
              f"{items} ReportItems (targets: < 3 s on SQLite, < 200 MB peak)")
        url, db_folder = fresh_sqlite("import")
        try:
            _load_knowledge(url)
            template = Path(url.removeprefix("sqlite:///"))
            runs = []
            for n in range(args.runs):
                # Each run on a copy of the loaded knowledge base: an empty estate.
                copy = template.with_name(f"run{n}.db")
                shutil.copyfile(template, copy)
                runs.append(_child(["--child", f"sqlite:///{copy}", str(path)]))
            runs.sort(key=lambda r: r["seconds"])
            _report("SQLite", runs[0])
            if len(runs) > 1:
                times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
                print(f"  (best of {len(runs)} runs; all: {times} s)")
        finally:
            cleanup(db_folder)
        if args.pg:
            with pg_schema(args.pg) as pg_url:
                _load_knowledge(pg_url)
                _report("PostgreSQL", _child(["--child", pg_url, str(path)]))
        python = args.faraday_python
        if python is None:
            probe = subprocess.run([sys.executable, "-c", "import faraday_plugins"],
                                   capture_output=True, check=False)
            python = sys.executable if probe.returncode == 0 else None
        if python:
            r = _child([str(path)], python, "bench.faraday_parse")
            print(f"  faraday-plugins (parse only) {r['seconds']:6.2f} s   peak RSS "
                  f"{r['peak_mb']:5.0f} MB   hosts {r['hosts']}, vulnerabilities {r['vulns']}")
        else:
            print("  faraday-plugins: not installed (pip install faraday-plugins, or "
                  "--faraday-python PATH) -- no comparison in this run")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
