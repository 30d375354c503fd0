"""pip-audit -f json: the 1.x list and the 2.x object."""

from __future__ import annotations

import io

import pytest

from patchpilot.importers import registry
from patchpilot.importers.formats import pip_audit
from patchpilot.importers.model import ReportError, ReportItem, Skipped, Target


def test_many_vulns(parse_report) -> None:
    parsed = parse_report("pip_audit/many_vulns.json", expect="pip-audit")
    assert parsed.targets == [Target()]
    assert (len(parsed.findings), len(parsed.informational)) == (7, 0)
    assert parsed.skipped == [Skipped("dependency not audited")]  # azure-devops
    assert [(i.scanner_id, i.package, i.installed_version, i.fixed_version)
            for i in parsed.findings] == [
        ("PYSEC-2021-76", "aiohttp", "3.6.2", "3.7.4"),
        ("PYSEC-2021-439", "django", "3.2.9", "3.2.10"),  # not 2.2.25 nor 3.1.14
        ("PYSEC-2021-852", "lxml", "4.6.4", None),  # no fix version given
        ("PYSEC-2019-128", "twisted", "18.9.0", "19.2.1"),
        ("PYSEC-2020-260", "twisted", "18.9.0", "20.3.0rc1"),
        ("PYSEC-2019-129", "twisted", "18.9.0", "19.7.0rc1"),
        ("PYSEC-2020-259", "twisted", "18.9.0", "20.3.0rc1"),
    ]
    item = parsed.findings[1]
    assert (item.ecosystem, item.severity, item.cves, item.title) == (
        "PyPI", "Unknown", (), None)
    assert item.description is not None and item.description.startswith(
        "In Django 2.2 before 2.2.25, 3.1 before 3.1.14")


def test_zero_vulns(parse_report) -> None:
    parsed = parse_report("pip_audit/zero_vulns.json", expect="pip-audit")
    assert parsed.targets == [Target()]
    assert parsed.items == []
    assert parsed.skipped == [Skipped("dependency not audited")]


def test_empty_list_is_not_recognised_but_reads_as_no_dependencies(shared_data) -> None:
    path = shared_data / "reports" / "pip_audit" / "empty.json"
    with path.open("rb") as stream:
        # "[]" names no tool: claiming it would let any empty list close findings.
        with pytest.raises(registry.UnknownFormat):
            registry.detect(registry.sniff(stream, path.name))
        assert list(registry.by_name("pip-audit").parse(stream, path.name)) == [Target()]


def test_2x_object_with_aliases() -> None:
    data = (b'{"dependencies": [{"name": "jinja2", "version": "3.1.2", "vulns": [{"id": '
            b'"GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": ["CVE-2024-22195"]'
            b', "description": "xmlattr"}]}], "fixes": []}')
    rows = list(pip_audit.FORMAT.parse(io.BytesIO(data), "p.json"))
    assert rows[0] == Target()
    item = rows[1]
    assert isinstance(item, ReportItem)
    assert (item.scanner_id, item.cves, item.aliases, item.fixed_version) == (
        "GHSA-h5c8-rqwp-cp95", ("CVE-2024-22195",), (), "3.1.3")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "p.json: the file is empty"),
    (b"name,version\n", "p.json:1: not a pip-audit JSON report"),
    (b'[{"name": "a", "version": "1", "vulns": [', "p.json: malformed JSON"),
    (b'{"fixes": []}', "p.json: not a pip-audit report: no 'dependencies' list"),
])
def test_refused(data: bytes, message: str) -> None:
    with pytest.raises(ReportError) as caught:
        list(pip_audit.FORMAT.parse(io.BytesIO(data), "p.json"))
    assert str(caught.value).startswith(message)
