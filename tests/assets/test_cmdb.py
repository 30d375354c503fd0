"""CMDB exports parsed into records: columns, aliases, values, and errors by file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.assets.cmdb import (
    CmdbFormatError,
    CmdbRecord,
    parse_csv,
    parse_file,
    parse_json,
    parse_yaml,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cmdb.csv"


def test_example_csv() -> None:
    records = parse_file(EXAMPLE)
    assert [r.hostname for r in records] == [
        "plant1-app-07", "plant1-db-01", "plant2-ws-11", "plant3-web-02", "plant3-ci"]
    first = records[0]
    assert first == CmdbRecord(
        where="cmdb.csv:2", hostname="plant1-app-07", fqdn="plant1-app-07.plant1.example.jp",
        ip="10.1.0.17", criticality=1, environment="production", exposure="internet-facing",
        data_classification="confidential", owner="Sato", service="Order portal",
        location="Plant 1 (Nagoya)", tags=("customer-facing", "pci"),
        present=frozenset({"criticality", "environment", "exposure", "data_classification",
                           "owner", "service", "location", "tags"}))
    assert records[3].tags == () and records[2].fqdn is None


def test_aliases_values_and_extra_columns() -> None:
    text = ("Host Name;Tier;ENV;Exposure;Site;Tags;Serial Number;IP-Address\n"
            "web1;Tier 2;prod;Internet;Osaka;a, b;a;SN1;10.0.0.5/24\n")
    with pytest.raises(CmdbFormatError) as bad:
        parse_csv(text, "x.csv")  # one cell too many: a tag list with ";" in a ";" file
    assert str(bad.value) == "x.csv:2: more cells than columns in the header"
    text = ("Host Name;Tier;ENV;Exposure;Site;Tags;Serial Number;IP-Address\n"
            "web1;Tier 2;prod;Internet;Osaka;a, b,a;SN1;10.0.0.5/24\n"
            "\n"
            "WEB2;t4;dev;air-gapped;;;;\n")
    one, two = parse_csv(text, "x.csv")
    assert (one.hostname, one.criticality, one.environment, one.exposure, one.location,
            one.tags, one.ip, dict(one.extra)) == (
        "web1", 2, "production", "internet-facing", "Osaka", ("a", "b"), "10.0.0.5",
        {"Serial Number": "SN1"})
    assert (two.where, two.hostname, two.criticality, two.location, two.tags, two.ip) == (
        "x.csv:4", "WEB2", 4, None, (), None)
    # Present but empty: the stored value is cleared; absent columns are not "present".
    assert "location" in two.present and "owner" not in two.present


def test_every_problem_named_by_file_line_and_column() -> None:
    text = ("hostname,criticality,environment,exposure\n"
            "a,1,production,internal\n"
            "b,high,production,internal\n"
            "c,5,qa,internal\n"
            ",2,production,internal\n"
            "\"d\nstill d\",1,production,dmz\n")
    with pytest.raises(CmdbFormatError) as bad:
        parse_csv(text, "cmdb.csv")
    assert bad.value.problems == [
        "cmdb.csv:3: criticality must be 1-4, got 'high'",
        "cmdb.csv:4: criticality must be 1-4, got '5'",
        "cmdb.csv:5: no hostname, fqdn, ip or machine_id to match the row by",
        "cmdb.csv:6: exposure must be one of internet-facing, internal, isolated, got 'dmz'",
    ]
    text = "hostname,environment\nx,qa\n"
    with pytest.raises(CmdbFormatError, match=r"^cmdb.csv:2: environment must be one of "
                       r"production, staging, development, got 'qa'$"):
        parse_csv(text, "cmdb.csv")


def test_header_without_identity_column() -> None:
    with pytest.raises(CmdbFormatError) as bad:
        parse_csv("owner,tier\nx,1\n", "c.csv")
    assert str(bad.value) == "c.csv:1: no hostname, fqdn, ip or machine_id column (got owner, tier)"
    with pytest.raises(CmdbFormatError, match="empty file"):
        parse_csv("", "c.csv")


def test_json_and_yaml() -> None:
    data = ('[{"hostname": "a", "criticality": 1, "tags": ["x", "y"], "ip": ["10.0.0.1"]},'
            ' {"fqdn": "b.example", "criticality": "T3", "env": "staging"}]')
    a, b = parse_json(data, "c.json")
    assert (a.where, a.criticality, a.tags, a.ip) == ("c.json:record 1", 1, ("x", "y"), "10.0.0.1")
    assert (b.where, b.fqdn, b.criticality, b.environment) == (
        "c.json:record 2", "b.example", 3, "staging")
    with pytest.raises(CmdbFormatError) as bad:
        parse_json('{"assets": [{"hostname": "a", "criticality": 0}, 3]}', "c.json")
    assert bad.value.problems == ["c.json:record 2: expected an object"]
    with pytest.raises(CmdbFormatError) as bad:
        parse_json('[{"hostname": "a", "criticality": 0}]', "c.json")
    assert bad.value.problems == ["c.json:record 1: criticality must be 1-4, got 0"]

    text = ("# exported from the CMDB\n"
            "- hostname: a\n"
            "  criticality: 2\n"
            "  tags: [x]\n"
            "- hostname: b\n"
            "  criticality: yes\n")
    with pytest.raises(CmdbFormatError) as bad:
        parse_yaml(text, "c.yaml")
    assert bad.value.problems == ["c.yaml:5: criticality must be 1-4, got True"]
    (only,) = parse_yaml(text.rsplit("- hostname: b", 1)[0], "c.yaml")
    assert (only.where, only.criticality, only.tags) == ("c.yaml:2", 2, ("x",))


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.xlsx"
    path.write_text("x")
    with pytest.raises(CmdbFormatError, match=r"^cmdb.xlsx: unknown format '.xlsx'"):
        parse_file(path)


def test_structure_errors_are_named() -> None:
    # A column given twice under two of its names (owner and its alias), a column with no
    # name, and JSON/YAML that is not JSON/YAML at all: each refused with where it is.
    with pytest.raises(CmdbFormatError) as bad:
        parse_csv("hostname,owner,Owner\nweb1,sato,suzuki\n", "c.csv")
    assert bad.value.problems == ["c.csv:2: column owner given twice (as 'Owner')"]
    with pytest.raises(CmdbFormatError) as bad:
        parse_csv("hostname,,owner\nweb1,x,sato\n", "c.csv")
    assert bad.value.problems == ["c.csv:1: a column has no name"]
    with pytest.raises(CmdbFormatError) as bad:
        parse_json('[{"hostname": "web1",}]', "c.json")
    [problem] = bad.value.problems
    assert problem.startswith("c.json: not valid JSON: ")
    with pytest.raises(CmdbFormatError) as bad:
        parse_yaml("- hostname: web1\n  owner: [sato\n", "c.yaml")
    [problem] = bad.value.problems
    assert problem.startswith("c.yaml: not valid YAML: ")


def test_values_longer_than_their_column_are_refused() -> None:
    # The stored columns' lengths: SQLite would store an over-long owner, PostgreSQL would
    # refuse it with a raw driver error -- both must give this message instead.
    owner = "o" * 201
    with pytest.raises(CmdbFormatError) as bad:
        parse_csv(f"hostname,owner\nweb1,{owner}\n", "c.csv")
    assert bad.value.problems == ["c.csv:2: owner is longer than 200 characters"]
    (fits,) = parse_csv(f"hostname,owner\nweb1,{owner[:200]}\n", "c.csv")
    assert fits.owner == owner[:200]
