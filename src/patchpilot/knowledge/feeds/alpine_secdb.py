"""Alpine's secdb (https://secdb.alpinelinux.org/) into the internal advisory schema.

One file per release and repository (``v3.18/main.yaml``, ``community.yaml``, and the same
as ``.json``)::

    distroversion: v3.18
    reponame: main
    packages:
      - pkg:
          name: openssl
          secfixes:
            3.1.1-r0: [CVE-2023-2650]
            "0": [CVE-2022-1234]       # "0": this release was never affected

The ``secfixes`` convention is documented at
https://wiki.alpinelinux.org/wiki/Development_using_git:Package_security_fixes .
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from patchpilot.errors import FeedError
from patchpilot.knowledge.ecosystems import normalize_ecosystem
from patchpilot.knowledge.feeds._common import download_if_changed, read_file, yaml_loader
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.names import normalize_name
from patchpilot.models import (
    Advisory,
    AdvisoryId,
    AffectedPackage,
    AffectedRange,
    AffectedStatus,
)

SECDB_URL = "https://secdb.alpinelinux.org"
DEFAULT_RELEASES: tuple[str, ...] = (
    "v3.16", "v3.17", "v3.18", "v3.19", "v3.20", "v3.21", "v3.22", "edge",
)
REPOSITORIES = ("main", "community")

# secdb versions are quoted only when they must be ("0"); YAML 1.1 would read an unquoted
# "1.10" as a float, so only strings, lists, maps, bools and nulls are resolved.
_load_yaml = yaml_loader(lambda tag: tag in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"))

# One id in a secfixes entry: CVE-2019-5060, XSA-207, TALOS-2019-0844, GHSA-xxxx-xxxx-xxxx,
# ZBX-16532, wnpa-sec-2019-01.  Entries also carry free text ("(BGP)", "XPTI") and typos
# ("CVE_2019-2426", "CVE-2017-8073.patch", "CVE-????-?????"), which are dropped or fixed.
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+$")
_PARENS = re.compile(r"\([^)]*\)")


class AlpineSecdbFeed:
    """Alpine's fixed-in versions per package, release and repository."""

    name = "alpine-secdb"
    kind = RecordKind.ADVISORY
    priority = 100  # the distribution's own data beats derived OSV data
    # One file per release and repository, and the same CVE id in each: every file is a
    # source of its own so one release's advisories never replace another's.
    source_per_file = True

    def __init__(self, releases: Sequence[str] = DEFAULT_RELEASES) -> None:
        self.releases = tuple(releases)

    def claims(self, path: Path, head: bytes) -> bool:
        """A secdb file: YAML or JSON naming ``secfixes`` or ``distroversion``."""
        if not path.name.lower().endswith((".yaml", ".yml", ".json")):
            return False
        return b"secfixes" in head or b"distroversion" in head

    def read(self, path: Path) -> Iterator[Advisory]:
        """One Advisory per CVE (or other id) fixed in this release and repository."""
        try:
            data = read_file(path)
        except OSError as exc:
            raise FeedError(path, f"cannot read file: {exc.strerror or exc}") from exc
        if path.name.lower().endswith(".json"):
            try:
                secdb = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise FeedError(path, f"invalid JSON: {exc}") from exc
        else:
            try:
                secdb = _load_yaml(data)  # safe: no tags run code
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                raise FeedError(path, f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                                line=mark.line + 1 if mark is not None else None) from exc
        if type(secdb) is not dict:
            raise FeedError(path, "a secdb file is a mapping with 'distroversion' and "
                                  "'packages'")
        yield from _advisories(path, secdb)

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download ``<release>/{main,community}.yaml`` for each release (conditional GET)."""
        files = []
        for release in self.releases:
            for repo in REPOSITORIES:
                target = dest / release / f"{repo}.yaml"
                changed = download_if_changed(client, f"{SECDB_URL}/{release}/{repo}.yaml",
                                              target)
                if changed or since is None:
                    files.append(target)
        return files


FEED = AlpineSecdbFeed()


def _ids(entry: str) -> list[str]:
    """The ids in one secfixes entry, CVEs normalised, free text dropped."""
    out = []
    for token in _PARENS.sub(" ", entry).split():
        if token.endswith(".patch"):
            token = token[:-len(".patch")]
        if token.startswith("CVE_"):
            token = "CVE-" + token[4:]
        if _ID.match(token):
            out.append(token)
    return out


def _advisories(path: Path, secdb: dict[str, Any]) -> Iterator[Advisory]:
    release = secdb.get("distroversion")
    if type(release) is not str or not release:
        raise FeedError(path, "'distroversion' must be a release such as 'v3.18'")
    eco = normalize_ecosystem(f"Alpine:{release}")  # v3.18 -> Alpine:3.18; edge stays edge
    packages = secdb.get("packages") or ()  # an empty repository has "packages:" and no list
    if type(packages) is not list and packages != ():
        raise FeedError(path, "'packages' must be a list")

    # An advisory per id across the file's packages; insertion order follows the file.
    affected: dict[str, list[AffectedPackage]] = {}
    aliases: dict[str, dict[str, None]] = {}
    raws: dict[str, list[dict[str, str]]] = {}
    for index, item in enumerate(packages):
        pkg = item.get("pkg") if type(item) is dict else None
        if type(pkg) is not dict or type(pkg.get("name")) is not str:
            raise FeedError(path, f"packages[{index}]: needs 'pkg' with a string 'name'")
        raw_name = pkg["name"]
        name = normalize_name("Alpine", raw_name)
        secfixes = pkg.get("secfixes") or {}
        if type(secfixes) is not dict:
            raise FeedError(path, f"{raw_name}: 'secfixes' must map versions to id lists")
        for fixed, entries in secfixes.items():
            if not entries:
                continue
            if type(entries) is not list:
                raise FeedError(path, f"{raw_name} {fixed}: 'secfixes' value must be a list")
            fixed = str(fixed)
            if fixed == "0":
                # "0": the package in this release never had the flaw (secfixes convention).
                package = AffectedPackage(ecosystem=eco, name=name,
                                          status=AffectedStatus.NOT_AFFECTED)
            else:
                package = AffectedPackage(ecosystem=eco, name=name,
                                          ranges=(AffectedRange(fixed=fixed),))
            for entry in entries:
                if type(entry) is not str:
                    raise FeedError(path, f"{raw_name} {fixed}: ids must be strings")
                ids = _ids(entry)
                cves = [i for i in ids if i.startswith("CVE-")]
                others = [i for i in ids if not i.startswith("CVE-")]
                # The CVE is the advisory; XSA/GHSA/TALOS ids on the same line are its
                # aliases.  Without a CVE the first id stands for the issue.
                for key in cves or others[:1]:
                    packages_of = affected.get(key)
                    if packages_of is None:
                        packages_of = affected[key] = []
                        aliases[key] = {}
                        raws[key] = []
                    packages_of.append(package)
                    aliases[key].update(dict.fromkeys(i for i in others if i != key))
                    raws[key].append({"name": raw_name, "fixed": fixed, "entry": entry})

    for key, packages_of in affected.items():
        yield Advisory(
            id=AdvisoryId(key),
            source="alpine-secdb",
            aliases=tuple(aliases[key]),
            affected=tuple(dict.fromkeys(packages_of)),  # a CVE listed twice for a package
            raw=orjson.dumps({"distroversion": release, "reponame": secdb.get("reponame"),
                              "secfixes": raws[key]}),
        )
