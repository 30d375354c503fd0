"""Benchmark: loading a JVN iPedia yearly detail feed (about 10,000 entries) into an empty
knowledge base, then reloading it unchanged.

Target (issue 17): a yearly feed of ~10,000 entries in under 10 s.  No yearly file is in
../shared/data (only MyJVN examples), so one is generated: the 7 real entries of
``jvn/hnd/dataFeed_jvndb_detail_hnd.xml`` (NEC Aterm, Planex, FortiWeb, …) replicated
with distinct JVNDB ids and CVE ids, into one ``jvndb_detail_2024.xml`` as the data feed
publishes it.  Prints parse and load time on SQLite (and PostgreSQL with --pg URL).

    python -m bench.bench_jvn [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from bench.common import DATA, main_on_databases
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.knowledge.feeds._jvn import parse_jvn
from patchpilot.knowledge.update import discover, load_source

ENTRIES = 10_000
TARGET_SECONDS = 10.0
SEED = DATA / "jvn" / "hnd" / "dataFeed_jvndb_detail_hnd.xml"
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def yearly_feed(folder: Path, entries: int = ENTRIES) -> Path:
    """A VULDEF detail feed of ``entries`` entries made from the real ones."""
    text = SEED.read_text("utf-8")
    start, end = text.index("<Vulinfo>"), text.rindex("</Vulinfo>") + len("</Vulinfo>")
    blocks = re.findall(r"<Vulinfo>.*?</Vulinfo>", text[start:end], flags=re.S)
    out = []
    for n in range(entries):
        block = blocks[n % len(blocks)]
        cves: dict[str, str] = {}

        def cve(m: re.Match[str], n: int = n, cves: dict[str, str] = cves) -> str:
            return cves.setdefault(m.group(0), f"CVE-2024-{100000 + n * 10 + len(cves)}")

        block = re.sub(r"JVNDB-\d{4}-\d{6}", f"JVNDB-2024-{n + 1:06d}", block)
        out.append(_CVE.sub(cve, block))
    path = folder / "jvn" / "jvndb_detail_2024.xml"
    path.parent.mkdir(parents=True)
    path.write_text(text[:start] + "\n  ".join(out) + text[end:], "utf-8")
    return path


def run(url: str, label: str) -> None:
    """Generate the feed, then parse, load and reload it, printing the times."""
    engine = make_engine(url)
    upgrade_schema(engine)
    print(f"\n== {label}: JVN yearly detail feed, {ENTRIES:,} entries "
          f"(target < {TARGET_SECONDS:.0f} s) ==")
    with tempfile.TemporaryDirectory() as tmp:
        path = yearly_feed(Path(tmp))
        size = path.stat().st_size
        started = time.perf_counter()
        count = sum(1 for _ in parse_jvn(path))
        parsed = time.perf_counter() - started
        [source] = discover([path.parent])
        first = load_source(engine, source)
        again = load_source(engine, source, force=True)
    if first.status != "loaded" or again.status != "loaded":
        raise SystemExit(first.error or again.error)
    print(f"  {size / 1e6:5.1f} MB  {count:,} entries  parse {parsed:.2f} s  "
          f"load {first.seconds:.2f} s ({first.written:,} written)  "
          f"reload {again.seconds:.2f} s ({again.written:,} rewritten)")
    print(f"  load: {first.seconds:.2f} s -> "
          f"{'OK' if first.seconds < TARGET_SECONDS else 'SLOW'}")
    engine.dispose()


def main() -> None:
    """``--pg URL`` to run on PostgreSQL too."""
    main_on_databases("jvn", __doc__, run)


if __name__ == "__main__":
    main()
