"""``systeminfo`` output, in any display language.

``systeminfo`` prints the same fields in the same order in every language; only the
labels are translated (and the value column moves with the longest label)::

    Host Name:                 WIN-RIBN7SM07BK
    OS Name:                   Microsoft Windows Server 2022 Standard
    OS Version:                10.0.20348 N/A Build 20348
    ...
    Hotfix(s):                 3 Hotfix(s) Installed.
                               [01]: KB5004330

So fields are found by structure, and the labels are only a cross-check:

* the OS version line is the one whose value is ``major.minor.build <words> build``
  (``N/A Build``, ``N/D Compilación``, ``Service Pack 1 version``); the OS name is the
  line before it and the host name the one before that; the original install date is
  the 7th line after it (manufacturer, configuration, build type, owner, organisation,
  product id come between, in every version from XP to Server 2022);
* the system type is the value ``x64-based PC`` / ``X86-based PC`` / ``ARM64-based PC``
  (never translated);
* the hotfix list may stop short of its count (``[246]``, ``[24`` or a cut item, then the
  next field): systeminfo's own buffer limit, not a damaged file; the facts then say
  ``kbs_complete=False``.  A list short of its count at the end of the text is a
  truncated file and is refused;
* the logon server is the value starting with ``\\\\``; the domain is the line before it
  and the hotfix list the line after it, cross-checked by label and by its ``[01]: KB…``
  items.

The UBR (``20348.2227``) is not in systeminfo (its OS version stops at the build), so
``WindowsFacts.ubr`` is None.  A file without an OS version line, without a hotfix list,
or with fewer hotfix items than its count says (truncated) is refused: a missing KB list
would make every update look missing.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.windows.facts import (
    WindowsFacts,
    architecture_of,
    clean_product_name,
    kb_number,
    normalise_product,
    sorted_kbs,
)

SYSTEMINFO_COMMAND = ("systeminfo",)
"""The command whose output this module reads (run as it is, in any display language)."""

# Labels as a cross-check of the structural reading (lower case, without the colon).
# en, de, fr, es, it, nl, pt-br, sv: the languages of the shared samples and a few more.
HOTFIX_LABELS = frozenset({
    "hotfix(s)", "hotfix(es)", "correctif(s)", "revisión(es)", "revisiones",
    "aggiornamenti rapidi", "hotfix(en)", "hotfixes", "correções", "snabbkorrigeringar",
})
DOMAIN_LABELS = frozenset({"domain", "domäne", "domaine", "dominio", "domein", "domínio",
                           "domän"})
OS_NAME_LABELS = frozenset({
    "os name", "betriebssystemname", "nom du système d'exploitation",
    "nombre del sistema operativo", "nome so", "nome do sistema operacional",
    "naam van besturingssysteem", "os-namn",
})
_REDACTED = frozenset({"", "...", "n/a", "n/d", "k.a.", "nicht verfügbar"})

_OS_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)\b(.*?)(\d+)\s*$")
_SERVICE_PACK = re.compile(r"Service Pack (\d+)", re.IGNORECASE)
_ITEM = re.compile(r"^(\s+)\[(\d+)\]\s?:\s?(.*)$")
# systeminfo's own cut-off: it stops its hotfix list after a fixed-size buffer, anywhere
# ("[246]", "[24", "[2", or inside an item: "[240]: KB2862"), then carries on with the
# next field.
_CUT_MARKER = re.compile(r"^(\s+)\[\d*\]?\s*$")
_VALUE_START = re.compile(r":( +)(?=\S)")
_LEADING_COUNT = re.compile(r"^\s*(\d+)\b")
_DATE = re.compile(r"^\s*(\d{1,4})[./-](\d{1,2})[./-](\d{1,4})\b")


@dataclass(slots=True)
class _Field:
    """One top-level ``label: value`` line and the ``[nn]: item`` lines under it."""

    line: int  # 1-based line number in the text
    label: str
    value: str
    items: list[str] = field(default_factory=list)
    cut_at: int | None = None  # the line of a cut "[nn" ending the items

    @property
    def key(self) -> str:
        return self.label.lower().strip()


def parse_systeminfo(text: str, source: str) -> WindowsFacts:
    """The facts of a ``systeminfo`` output (see the module docstring for how it is read).

    Raises InventoryFormatError naming ``source`` and the line (or what is missing) for
    text that is not a whole systeminfo output.
    """
    fields, warnings = _fields(text, source)
    v = _os_version_index(fields, source)
    version = fields[v]
    match = _OS_VERSION.match(version.value)
    assert match is not None  # _os_version_index chose it by this pattern
    major, minor, build = int(match[1]), int(match[2]), int(match[3])
    if int(match[5]) != build:
        warnings.append(f"{source}:{version.line}: OS version {version.value!r} names two "
                        f"different builds; {build} is used")
    sp = _SERVICE_PACK.search(match[4])

    if v == 0 or "windows" not in fields[v - 1].value.lower():
        raise InventoryFormatError(source, "no OS name line (\"Microsoft Windows ...\") "
                                           "before the OS version line", line=version.line)
    name_field = fields[v - 1]
    if name_field.key not in OS_NAME_LABELS:
        warnings.append(f"{source}:{name_field.line}: label {name_field.label!r} of the OS "
                        "name is not one PatchPilot knows; read by position")
    product = clean_product_name(name_field.value)
    family, release, edition = normalise_product(product, build)

    hostname = _value(fields[v - 2]) if v >= 2 else None
    if v < 2:
        warnings.append(f"{source}: no host name line before the OS name")

    arch_field = next((f for f in fields if architecture_of(f.value)), None)
    if arch_field is None:
        warnings.append(f"{source}: no system type (\"x64-based PC\") line")

    kbs, others, domain, complete = _hotfixes(fields, v, source, warnings)
    return WindowsFacts(
        source=source, format="systeminfo", product_name=product, family=family,
        release=release, edition=edition, os_version=f"{major}.{minor}.{build}", build=build,
        ubr=None, service_pack=int(sp[1]) if sp else None,
        architecture=architecture_of(arch_field.value) if arch_field else None,
        kbs=kbs, other_hotfixes=others, kbs_complete=complete, hostname=hostname, domain=domain,
        install_date=_install_date(fields, v, source, warnings), warnings=tuple(warnings))


def _fields(text: str, source: str) -> tuple[list[_Field], list[str]]:
    """The top-level fields of ``text`` with their items, and warnings for odd lines."""
    lines = text.split("\n")
    column = _value_column(lines)
    if column is None:
        raise InventoryFormatError(source, "no \"label: value\" lines: not systeminfo output")
    fields: list[_Field] = []
    warnings: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line[0] in " \t":
            item = _ITEM.match(line)
            # Items of a field sit at the value column; deeper ones are a network card's
            # addresses.  Lines before the first field cannot belong to anything.
            if item and fields and abs(len(item[1]) - column) <= 2:
                fields[-1].items.append(item[3].strip())
            elif (cut := _CUT_MARKER.match(line)) and fields and abs(len(cut[1]) - column) <= 2:
                fields[-1].cut_at = number
            continue
        head = line[:column].rstrip()
        if len(line) >= column and head.endswith(":"):
            fields.append(_Field(number, head[:-1].strip(), line[column:].strip()))
        elif line.rstrip().endswith(":"):
            fields.append(_Field(number, line.rstrip()[:-1].strip(), ""))
        elif (loose := re.match(r"^(.*?\S)\s*:\s+(.*)$", line)) is not None:
            fields.append(_Field(number, loose[1], loose[2].strip()))
        else:
            warnings.append(f"{source}:{number}: line without \"label: value\" skipped")
    return fields, warnings


def _value_column(lines: list[str]) -> int | None:
    """The column values start at: the most common end of ``label:   `` on top-level
    lines (a label may itself hold a colon: ``Virtual Memory: Max Size:``)."""
    columns: Counter[int] = Counter()
    for line in lines:
        if line[:1] not in ("", " ", "\t"):
            columns.update(m.end() for m in _VALUE_START.finditer(line))
    if not columns:
        return None
    column, count = columns.most_common(1)[0]
    return column if count >= 3 else None


def _os_version_index(fields: list[_Field], source: str) -> int:
    for index, f in enumerate(fields):
        if _OS_VERSION.match(f.value):
            return index
    raise InventoryFormatError(
        source, "no OS version line (a value like \"10.0.20348 N/A Build 20348\"): "
                "not systeminfo output, or truncated before it")


def _value(f: _Field) -> str | None:
    """A field's value, None when absent or redacted ("N/A", "N/D", "...")."""
    return None if f.value.strip().lower() in _REDACTED else f.value


def _hotfixes(fields: list[_Field], v: int, source: str, warnings: list[str]
              ) -> tuple[tuple[str, ...], tuple[str, ...], str | None, bool]:
    """(KBs, other hotfix entries, domain, whether the list is whole) from the hotfix list
    and the lines before it."""
    after = fields[v + 1:]
    logon = next((i for i, f in enumerate(after) if f.value.startswith("\\\\")), None)
    by_position = after[logon + 1] if logon is not None and logon + 1 < len(after) else None
    by_label = next((f for f in after if f.key in HOTFIX_LABELS), None)
    by_items = next((f for f in after if any(kb_number(i) for i in f.items)), None)
    hotfix = by_label or by_position or by_items
    if hotfix is None:
        raise InventoryFormatError(
            source, "no hotfix list (the \"Hotfix(s): N Hotfix(s) Installed.\" line): "
                    "truncated output?")
    if by_items is not None and by_items is not hotfix:
        raise InventoryFormatError(
            source, f"the hotfix list ({hotfix.label!r}) and the list holding KB numbers "
                    f"(line {by_items.line}, {by_items.label!r}) differ", line=hotfix.line)
    count = _LEADING_COUNT.match(hotfix.value)
    complete = True
    items = hotfix.items
    if count is not None and int(count[1]) > len(items) and hotfix is not fields[-1]:
        # Cut by systeminfo itself (another field follows): without a cut marker line
        # the cut fell inside the last item, which is then not to be trusted.
        complete = False
        if hotfix.cut_at is None:
            items = items[:-1]
        warnings.append(
            f"{source}:{hotfix.line}: systeminfo listed only {len(items)} of its "
            f"{count[1]} hotfixes (its own output limit); the KBs are incomplete -- add "
            "`wmic qfe list` or `Get-HotFix | ConvertTo-Json` output for the rest")
    elif count is not None and int(count[1]) != len(items):
        raise InventoryFormatError(
            source, f"the hotfix list says {count[1]} hotfix(es) but {len(hotfix.items)} "
                    "follow: truncated output?", line=hotfix.line)
    kbs, others = [], []
    for item in items:
        kb = kb_number(item)
        if kb:
            kbs.append(kb)
        else:
            others.append(item)
    domain_field = (after[logon - 1] if logon is not None and logon > 0
                    else next((f for f in after if f.key in DOMAIN_LABELS), None))
    if domain_field is not None and domain_field.key not in DOMAIN_LABELS:
        warnings.append(f"{source}:{domain_field.line}: label {domain_field.label!r} of the "
                        "domain is not one PatchPilot knows; read by position")
    domain = _value(domain_field) if domain_field is not None else None
    return sorted_kbs(kbs), tuple(dict.fromkeys(others)), domain, complete


def _install_date(fields: list[_Field], v: int, source: str, warnings: list[str]
                  ) -> date | None:
    """The original install date, when its day/month order can be told.

    The order follows the user's regional format, not the display language (an en-us
    system showed ``03/05/2018``), so it is told from the numbers themselves: a year
    first, or a part above 12 in the install date or the boot time (printed in the same
    format on the next line).  Otherwise the date is left out, with a warning.
    """
    if v + 7 >= len(fields):
        return None
    installed = _DATE.match(fields[v + 7].value)
    if installed is None:
        return None
    parts = [int(p) for p in installed.groups()]
    if len(installed[1]) == 4:
        return _date(parts[0], parts[1], parts[2])
    evidence = [parts]
    if v + 8 < len(fields) and (boot := _DATE.match(fields[v + 8].value)):
        evidence.append([int(p) for p in boot.groups()])
    day_first = any(p[0] > 12 for p in evidence)
    month_first = any(p[1] > 12 for p in evidence)
    year = parts[2] + 2000 if parts[2] < 100 else parts[2]
    if day_first != month_first:
        return _date(year, parts[1], parts[0]) if day_first else _date(year, parts[0], parts[1])
    warnings.append(f"{source}:{fields[v + 7].line}: install date {fields[v + 7].value!r} "
                    "has no telling day/month order; left out")
    return None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
