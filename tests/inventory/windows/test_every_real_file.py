"""Every real Windows file of ../shared/data/windows/systeminfo parses or is refused with a
reason (issue 16: "every shared systeminfo/qfe file parses (product, build, KBs) or is
refused with a clear reason").

``golden.json`` pins, per file, what it gives: format, product, build, architecture, the
number of KBs with the first and last, and whether systeminfo cut its own list short --
or the refusal.  Refresh it with ``pytest --update-golden`` and read the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.windows import read_windows_bytes

GOLDEN = Path(__file__).with_name("golden.json")
FOLDER = "windows/systeminfo"


def _summary(data: bytes, name: str) -> dict[str, Any]:
    try:
        facts = read_windows_bytes(data, name)
    except InventoryFormatError as exc:
        return {"refused": str(exc)}
    return {
        "format": facts.format, "product": facts.product_name, "family": facts.family,
        "release": facts.release, "edition": facts.edition, "build": facts.build,
        "service_pack": facts.service_pack, "arch": facts.architecture,
        "hostname": facts.hostname, "kbs": len(facts.kbs),
        "first_kb": facts.kbs[0] if facts.kbs else None,
        "last_kb": facts.kbs[-1] if facts.kbs else None,
        "kbs_complete": facts.kbs_complete, "warnings": len(facts.warnings),
    }


def test_every_file_matches_its_golden_entry(shared_data: Path, update_golden: bool) -> None:
    files = sorted((shared_data / FOLDER).iterdir())
    assert len(files) == 56
    actual = {f.name: _summary(f.read_bytes(), f.name) for f in files}
    if update_golden:
        GOLDEN.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert sorted(expected) == sorted(actual), "golden.json lists other files"
    for name in expected:
        assert actual[name] == expected[name], name


def test_golden_covers_every_format_and_refuses_only_two() -> None:
    golden = json.loads(GOLDEN.read_text())
    formats = {v.get("format") for v in golden.values()}
    assert formats == {"systeminfo", "qfe", "update-history", None}
    refused = {k: v["refused"] for k, v in golden.items() if "refused" in v}
    assert refused == {
        "10_1803_x64_proforworkstations_en-us_B_20190306_qfe.txt":
            "10_1803_x64_proforworkstations_en-us_B_20190306_qfe.txt: empty file (only "
            "blank lines)",
        "xp_sp2_x86_qfe.txt":
            "xp_sp2_x86_qfe.txt: no KB number in any hotfix entry (only: Q147222)",
    }
    # Every systeminfo names a product and a build; the cut lists are flagged.
    for name, entry in golden.items():
        if entry.get("format") == "systeminfo":
            assert entry["product"] and entry["build"] and entry["arch"], name
    assert sorted(k for k, v in golden.items() if v.get("kbs_complete") is False) == [
        "7_sp1_x64_enterprise_en-us_20190305_systeminfo.txt",
        "7_sp1_x64_enterprise_en-us_B_systeminfo.txt",
        "7_sp1_x64_ultimaten_de_systeminfo.txt",
        "srv_2003r2_sp2_x86_standard_en-us_systeminfo.txt",
        "xp_sp2_x64_systeminfo.txt",
        "xp_sp3_x86_professional_en-us_systeminfo.txt",
    ]


@pytest.mark.parametrize(("systeminfo", "qfe"), [
    ("srv_2012r2_u1_systeminfo.txt", "srv_2012r2_u1_qfe.txt"),
    ("vista_x64_sp1_systeminfo.txt", "vista_x64_sp1_qfe.txt"),
    ("10_1809_x64_education_en-us_20190306_systeminfo.txt",
     "10_1809_x64_education_en-us_20190306_qfe.txt"),
])
def test_systeminfo_and_qfe_of_one_host_agree(shared_data: Path, systeminfo: str,
                                              qfe: str) -> None:
    """Two printings of the same WMI list, saved the same day: the same KBs."""
    folder = shared_data / FOLDER
    a = read_windows_bytes((folder / systeminfo).read_bytes(), systeminfo)
    b = read_windows_bytes((folder / qfe).read_bytes(), qfe)
    assert a.kbs == b.kbs
    assert len(a.kbs) > 0
