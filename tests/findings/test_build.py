"""Which source's title, text, CVSS and workaround a finding shows (findings/build.py).

When several sources speak about one vulnerability the rules are: the title is the
advisory's summary (only when the advisory is about that one CVE and the summary is not an
erratum header like "Important: openssh security update"), then the CVE record's CNA
title, then KEV's vulnerability name, then the distribution's own words for the CVE (a
Red Hat-family erratum's "* pkg: … (CVE-…)" line, the Debian tracker's description), then
"<package>: <CWE name>", and only then a telling sentence of the description (never the
product blurb "X is a package designed to …"); the description -- the finding's summary --
is NVD's, then the CVE record's, then the advisory's details; CVSS is
the preferred metric of all of them (scoring/cvss.py), and without one the
distribution's own rating gives the band; the workaround is the CVE record's, then the
advisory's.  Each test loads a handful of real files from ../shared/data into a fresh
database (SQLite and PostgreSQL) and asserts the exact strings shown.

One rule is not pinned here: NVD's description before the CVE record's.  In every CVE
the shared data holds both records for, NVD's text is the CNA's, word for word.
"""

from __future__ import annotations

import json

import pytest
import yaml
from sqlalchemy import Engine

from patchpilot.findings.build import NO_WORKAROUND, build_findings, vulnerability_facts
from patchpilot.findings.model import Finding
from patchpilot.knowledge.cvss import preferred_metric
from patchpilot.knowledge.matcher import match_packages
from patchpilot.knowledge.update import update_from
from patchpilot.models import CvssMetric, Ecosystem, Package
from tests.conftest import SHARED_DATA

ALMA = Ecosystem("AlmaLinux:8")
KEV = {"kev/known_exploited_vulnerabilities.json": "kev/known_exploited_vulnerabilities.json"}
NVD_4863 = "nvd/nvd-api2-osvdev/nvdcve-2.0__CVE-2023-4863.json"
ALSA_TIGERVNC = "osv/almalinux/almalinux8/ALSA-2024:0607.json"
ALSA_OPENSSH = "osv/almalinux/almalinux8/ALSA-2023:4419.json"
CVE5_38408 = "nvd/cve5-osvdev/cvelistV5__cves__2023__38xxx__CVE-2023-38408.json"
RED_HAT_MITIGATION = (
    "Mitigation for this issue is either not available or the currently available options "
    "don't meet the Red Hat Product Security criteria comprising ease of use and deployment, "
    "applicability to widespread installation base or stability.")


def _load(engine: Engine, feed_dir, files: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    assert {r.status for r in update_from(engine, [feed_dir(files)])} == {"loaded"}


def _findings(engine: Engine, *packages: Package) -> dict[str, Finding]:
    with engine.connect() as conn:
        result = match_packages(conn, packages)
        return {f.vuln_id: f for f in build_findings(conn, result.matches)}


def _json(path: str) -> dict:  # type: ignore[type-arg]
    return json.loads((SHARED_DATA / path).read_text(encoding="utf-8"))


def _nvd_description(path: str) -> str:
    cve = _json(path)["vulnerabilities"][0]["cve"]
    return next(d["value"] for d in cve["descriptions"] if d["lang"] == "en")


def test_kev_name_titles_it_and_nvd_describes_it(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # libwebp's AlmaLinux advisory, NVD's record and KEV speak of CVE-2023-4863; no CVE
    # record (so no CNA title) is loaded.
    _load(engine, feed_dir, {"osv/ALSA-2023:5309.json": "osv/almalinux/almalinux8/"
                             "ALSA-2023:5309.json", "nvd/CVE-2023-4863.json": NVD_4863, **KEV})
    found = _findings(engine, Package(ALMA, "libwebp", "1.0.0-8.el8_8", "x86_64"))
    finding = found["CVE-2023-4863"]
    # KEV's name, not the advisory's "Important: libwebp security update".
    assert finding.name == "Google Chromium WebP Heap-Based Buffer Overflow Vulnerability"
    # NVD's description, not the advisory's "The libwebp packages provide a library…".
    assert finding.summary == _nvd_description(NVD_4863)
    assert finding.summary.startswith("Heap buffer overflow in libwebp in Google Chrome prior "
                                      "to 116.0.5845.187 and libwebp 1.3.2 allowed a remote")
    # NVD's CVSS gives the band, over the distribution's "Important".
    assert finding.cvss == CvssMetric(
        version="3.1", vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", score=8.8,
        severity="High", source="nvd@nist.gov")
    assert (finding.severity, finding.severity_source) == ("High", "cvss")
    assert (finding.exploit.known_exploited, finding.exploit.kev_date_added,
            finding.exploit.kev_due_date) == (True, "2023-09-13", "2023-10-04")
    assert (finding.workaround, finding.cwes) == (NO_WORKAROUND, ("CWE-787",))
    assert finding.evidence.advisory_id == "ALSA-2023:5309"


def test_cve_record_title_cvss_and_workaround_win(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # tigervnc's advisory fixes four CVEs; only CVE-2023-6816 has a CVE record (Red Hat's,
    # with a title, a CVSS 3.1 vector and a workaround).
    _load(engine, feed_dir, {"osv/ALSA-2024:0607.json": ALSA_TIGERVNC,
                             "cve5/CVE-2023-6816.json": "nvd/cve5-critical-cvelist/"
                                                        "CVE-2023-6816.json"})
    found = _findings(engine, Package(ALMA, "tigervnc", "1.13.1-2.el8_9.4.alma.1", "x86_64"))
    assert sorted(found) == ["CVE-2023-6816", "CVE-2024-0229", "CVE-2024-21885",
                             "CVE-2024-21886"]
    described = found["CVE-2023-6816"]
    assert described.name == ("Xorg-x11-server: heap buffer overflow in devicefocusevent and "
                              "procxiquerypointer")
    assert described.summary.startswith("A flaw was found in X.Org server. Both "
                                        "DeviceFocusEvent and the XIQueryPointer reply")
    assert described.workaround == RED_HAT_MITIGATION
    assert described.cvss == CvssMetric(
        version="3.1", vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", score=9.8,
        severity="Critical", source="redhat")
    assert (described.severity, described.severity_source) == ("Critical", "cvss")

    # Its siblings have only the advisory.  Its summary "Important: tigervnc security
    # update" names four CVEs, so it titles none, nor does the details' opening ("Virtual
    # Network Computing (VNC) is a remote display system …"): the erratum's own line for
    # each CVE does.
    details = _json(ALSA_TIGERVNC)["details"]
    assert details.startswith("Virtual Network Computing (VNC) is a remote display system")
    titles = {
        "CVE-2024-0229": "xorg-x11-server: reattaching to different master device may lead "
                         "to out-of-bounds memory access",
        "CVE-2024-21885": "xorg-x11-server: heap buffer overflow in XISendDeviceHierarchyEvent",
        "CVE-2024-21886": "xorg-x11-server: heap buffer overflow in DisableDevice",
    }
    for vuln_id, title in titles.items():
        bare = found[vuln_id]
        assert bare.name == title
        assert f"* {title} ({vuln_id})" in details
        assert bare.summary == details
        assert bare.cvss is None
        assert (bare.severity, bare.severity_source) == ("High", "distribution")  # Important
        assert bare.workaround == NO_WORKAROUND


def test_erratum_line_titles_a_one_cve_advisory(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # openssh's advisory is about CVE-2023-38408 alone; its CVE record has neither title
    # nor CVSS, but a description.
    _load(engine, feed_dir, {"osv/ALSA-2023:4419.json": ALSA_OPENSSH,
                             "cve5/CVE-2023-38408.json": CVE5_38408})
    finding = _findings(engine, Package(ALMA, "openssh", "8.0p1-17.el8_7", "x86_64"))[
        "CVE-2023-38408"]
    # Its summary "Important: openssh security update" names the erratum, not the flaw;
    # the erratum's own line for the CVE does.
    assert _json(ALSA_OPENSSH)["summary"] == "Important: openssh security update"
    assert finding.name == "openssh: Remote code execution in ssh-agent PKCS#11 support"
    cna = _json(CVE5_38408)["containers"]["cna"]
    assert finding.summary == cna["descriptions"][0]["value"]
    assert finding.summary.startswith("The PKCS#11 feature in ssh-agent in OpenSSH before "
                                      "9.3p2 has an insufficiently trustworthy search path")
    assert finding.summary != _json(ALSA_OPENSSH)["details"]
    assert (finding.cvss, finding.severity, finding.severity_source) == (
        None, "High", "distribution")


def test_distribution_tracker_alone(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # Debian's tracker: no CVE record, no CVSS; its urgency "medium" gives the band and
    # its description (longer than 160 characters) both text and, cut after a word, title.
    _load(engine, feed_dir, {"debian/debian.json":
                             "distro/vunnel-fixtures/debian/input/debian.json"})
    found = _findings(engine, Package(Ecosystem("Debian:10"), "backupninja", "0.8-1"),
                      Package(Ecosystem("Debian:10"), "txt2man", "1.5.5-2"))
    finding = found["CVE-2005-3111"]
    assert finding.name == ("The handler code for backupninja 0.8 and earlier creates "
                            "temporary files with predictable filenames, which allows local "
                            "users to modify arbitrary files via a…")
    assert len(finding.name) <= 160
    assert finding.summary.startswith(finding.name[:-1])
    assert found["CVE-2013-1444"].name == (
        "A certain Debian patch for txt2man 1.5.5, as used in txt2man 1.5.5-2, 1.5.5-4, and "
        "others, allows local users to overwrite arbitrary files via a symlink…")
    assert (finding.cvss, finding.severity, finding.severity_source) == (
        None, "Medium", "distribution")
    assert finding.evidence.feed == "debian-tracker"


def test_facts_cve_title_before_kev_and_nvd_metric_first(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # Log4Shell: a CVE record with a CNA title, and a KEV entry with its own name.
    # xz: NVD's record (NVD's and Red Hat's metrics) and Red Hat's CVE record.
    _load(engine, feed_dir, {
        "cve5/CVE-2021-44228.json": "nvd/cve5-osvdev/cvelistV5__cves__2021__44xxx__"
                                    "CVE-2021-44228.json",
        "nvd/CVE-2024-3094.json": "nvd/nvd-api2-osvdev/nvdcve-2.0__CVE-2024-3094.json",
        "cve5/CVE-2024-3094.json": "nvd/cve5-osvdev/cvelistV5__cves__2024__3xxx__"
                                   "CVE-2024-3094.json", **KEV})
    with engine.connect() as conn:
        facts = vulnerability_facts(conn, ["CVE-2021-44228", "CVE-2024-3094"])
    log4shell = facts["CVE-2021-44228"]
    assert log4shell.title == ("Apache Log4j2 JNDI features do not protect against attacker "
                               "controlled LDAP and other JNDI related endpoints")
    assert log4shell.exploit.known_exploited is True  # KEV's name lost only the title
    xz = facts["CVE-2024-3094"]
    assert xz.title == "Xz: malicious code in distributed source"
    # NVD's metrics first, then the CVE record's; all three carry the same vector, and
    # the one shown is NVD's own.
    assert [m.source for m in xz.metrics] == ["secalert@redhat.com", "nvd@nist.gov", "redhat"]
    shown = preferred_metric(xz.metrics)
    assert shown is not None and (shown.source, shown.score, shown.severity) == (
        "nvd@nist.gov", 10.0, "Critical")


@pytest.mark.parametrize("path", [ALSA_TIGERVNC, ALSA_OPENSSH])
def test_the_advisories_carry_no_cvss_or_workaround(path: str) -> None:
    # What the tests above rely on: these advisories give no CVSS of their own and no
    # workaround, so what the findings show came from the other sources.
    record = _json(path)
    assert "severity" not in record
    assert "workaround" not in json.dumps(record.get("database_specific", {}))


# --- titles on real advisories (issue 12: a title, never a description's opening) --------

PYSEC_CRYPTOGRAPHY = "osv/pypi/cryptography/PYSEC-2023-254.yaml"
PYPI = Ecosystem("PyPI")


def test_osv_summary_titles_it(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # Go's advisory has a summary; NVD's record names two CWEs and no title: the summary
    # wins, the description is still NVD's.
    nvd = "nvd/nvd-api2-dependencytrack/CVE-2022-31022-all-versions-vulnerable.json"
    _load(engine, feed_dir, {"osv/GO-2022-0470.json": "osv/go/GO-2022-0470.json",
                             "nvd/CVE-2022-31022.json": nvd})
    finding = _findings(engine, Package(Ecosystem("Go"), "github.com/blevesearch/bleve",
                                        "v1.0.14"))["CVE-2022-31022"]
    assert finding.name == "No access control in github.com/blevesearch/bleve and bleve/v2"
    assert finding.cwes == ("CWE-288", "CWE-306")
    assert finding.summary.startswith("Bleve is a text indexing library for go. Bleve includes")


def test_cve_record_title_for_an_osv_record_without_summary(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # PyPI's PYSEC records have no summary; GitHub's CVE record for urllib3 has a title.
    _load(engine, feed_dir, {
        "osv/PYSEC-2023-212.yaml": "osv/pypi/urllib3/PYSEC-2023-212.yaml",
        "cve5/CVE-2023-45803.json": "nvd/cve5-osvdev/cvelistV5__cves__2023__45xxx__"
                                    "CVE-2023-45803.json"})
    finding = _findings(engine, Package(PYPI, "urllib3", "1.26.17"))["CVE-2023-45803"]
    assert "summary" not in _json_yaml("osv/pypi/urllib3/PYSEC-2023-212.yaml")
    assert finding.name == "Request body not stripped after redirect in urllib3"
    assert finding.summary.startswith("urllib3 is a user-friendly HTTP client library")


def test_cwe_name_titles_an_osv_record_without_summary(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # nvflare's PYSEC record and NVD's record (CWE-502, no title): "<package>: <CWE name>".
    _load(engine, feed_dir, {
        "osv/PYSEC-2022-257.yaml": "osv/pypi/nvflare/PYSEC-2022-257.yaml",
        "nvd/CVE-2022-34668.json": "nvd/nvd-api2-osvdev/nvdcve-2.0__CVE-2022-34668.json"})
    finding = _findings(engine, Package(PYPI, "nvflare", "2.1.3"))["CVE-2022-34668"]
    assert finding.name == "nvflare: Deserialization of Untrusted Data"
    assert finding.cwes == ("CWE-502",)
    assert finding.summary.startswith("NVFLARE, versions prior to 2.1.4, contains a "
                                      "vulnerability that deserialization of Untrusted Data")


def test_osv_record_alone_skips_the_product_blurb(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    # The case: cryptography's PYSEC record alone (no summary, no CVE record, no
    # CWE).  Its details open with the product blurb, which is no title.
    _load(engine, feed_dir, {"osv/PYSEC-2023-254.yaml": PYSEC_CRYPTOGRAPHY})
    finding = _findings(engine, Package(PYPI, "cryptography", "38.0.4"))["CVE-2023-49083"]
    details = _json_yaml(PYSEC_CRYPTOGRAPHY)["details"]
    assert " ".join(details.split()).startswith(
        "cryptography is a package designed to expose cryptographic primitives")
    assert finding.name == (
        "cryptography: Calling `load_pem_pkcs7_certificates` or `load_der_pkcs7_certificates` "
        "could lead to a NULL-pointer dereference and segfault.")
    assert finding.summary == details


def _json_yaml(path: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((SHARED_DATA / path).read_text(encoding="utf-8"))
