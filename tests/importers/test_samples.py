"""Every report sample in ../shared/data/reports imports end to end -- or is refused with
its reason -- on both databases, with the counts of ``golden/samples.json``.

The samples are imported one after another into one database, in path order, as a
watched folder would take them; each file's summary (format, assets, findings,
informational items, skipped items by reason) or refusal is compared with the golden
file (``pytest --update-golden`` rewrites it after a deliberate change; read the diff).
The format tests (``formats/test_*.py``) assert the field values of each format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from patchpilot.db.tables import findings
from patchpilot.errors import PatchPilotError
from patchpilot.importers.apply import import_file

GOLDEN = Path(__file__).parent / "golden" / "samples.json"


def _outcome(engine: Engine, path: Path) -> dict[str, Any]:
    try:
        s = import_file(engine, path)
    except PatchPilotError as exc:
        return {"refused": type(exc).__name__, "reason": str(exc)}
    return {"format": s.format, "producer": s.producer, "assets": s.assets,
            "findings": s.findings, "informational": s.informational, "skipped": s.skipped}


def test_every_sample_imports_or_is_refused_with_its_reason(
        engine: Engine, shared_data: Path, update_golden: bool) -> None:
    root = shared_data / "reports"
    samples = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "EXPECTED.md")
    got = {str(p.relative_to(root)): _outcome(engine, p) for p in samples}
    if update_golden:
        GOLDEN.write_text(json.dumps(got, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                          encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got == expected
    imported = [o for o in got.values() if "refused" not in o]
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(findings)).scalar_one()
    # Every finding a report gave is stored (later reports of one scanner on one asset
    # close earlier ones, never delete them).
    assert stored >= max(o["findings"] for o in imported)
    assert len(imported) >= 120
