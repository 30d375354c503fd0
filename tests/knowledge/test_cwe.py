"""The CWE name table (knowledge/cwe.py) against the CWE names real documents quote."""

from __future__ import annotations

import html
import re

import pytest

from patchpilot.knowledge.cwe import CWE_NAMES, cwe_name
from tests.conftest import SHARED_DATA

# CWE Top 25 Most Dangerous Software Weaknesses, 2024 (https://cwe.mitre.org/top25/).
TOP_25_2024 = ["CWE-79", "CWE-787", "CWE-89", "CWE-352", "CWE-22", "CWE-125", "CWE-78",
               "CWE-416", "CWE-862", "CWE-434", "CWE-94", "CWE-20", "CWE-77", "CWE-287",
               "CWE-269", "CWE-502", "CWE-200", "CWE-863", "CWE-918", "CWE-119", "CWE-476",
               "CWE-798", "CWE-190", "CWE-400", "CWE-306"]


@pytest.mark.usefixtures("shared_data")
def test_names_are_the_ones_microsoft_quotes() -> None:
    # MSRC's CVRF documents name each CWE as MITRE's catalogue does (HTML-escaped twice).
    quoted: dict[str, str] = {}
    for path in sorted((SHARED_DATA / "msrc").glob("*.xml")):
        text = path.read_text(encoding="utf-8")
        for cwe, name in re.findall(r'<vuln:CWE ID="(CWE-\d+)">([^<]*)<', text):
            quoted[cwe] = html.unescape(html.unescape(name))
    shared = sorted(set(quoted) & set(CWE_NAMES), key=lambda c: int(c[4:]))
    assert len(shared) == 71
    assert {c: CWE_NAMES[c] for c in shared} == {c: quoted[c] for c in shared}


def test_the_top_25_are_named() -> None:
    assert [c for c in TOP_25_2024 if c not in CWE_NAMES] == []
    assert cwe_name("CWE-79") == ("Improper Neutralization of Input During Web Page Generation "
                                  "('Cross-site Scripting')")
    assert cwe_name("cwe-502") == "Deserialization of Untrusted Data"


@pytest.mark.parametrize("given", ["NVD-CWE-Other", "NVD-CWE-noinfo", "CWE-99999", "", "79"])
def test_unknown_ids_have_no_name(given: str) -> None:
    assert cwe_name(given) is None
