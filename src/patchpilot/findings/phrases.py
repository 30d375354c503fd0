"""The fixed phrases PatchPilot writes into a finding, and their translation when shown.

A finding's fields keep the English that PatchPilot wrote (the API, the CLI and SARIF
read them as they are); a page or a report in another language passes each field
through :func:`localise`, which recognises a phrase of :data:`PHRASES` -- the whole text,
or every part of a ``"; "``-joined list such as the exploit summary -- and gives it in the
reader's language with its values filled in.  Text that is no fixed phrase (an
advisory's own title or summary) is returned unchanged.  Rows written by any earlier
version read the same way, since only the words are matched.

Adding a phrase: write it here as a ``{name}`` template, use it where the finding is
built, and translate the message id in both catalogues (the pages' ``messages.po`` and
the reports' ``reports.po``); ``tests/server/test_web_i18n.py`` and
``tests/reports/test_japanese.py`` fail until it is translated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

Gettext = Callable[[str], str]

NO_WORKAROUND = "none published"
NO_EXPLOIT = "none known"
KEV = "KEV"
KEV_RANSOMWARE = "KEV (ransomware)"
# The vendor (MSRC "Exploited: Yes") says it is exploited; KEV does not list it (yet).
# Not in PHRASES until both catalogues (server/web, reports) translate it: until then it
# is shown in English.
VENDOR_EXPLOITED = "exploited (vendor)"
EPSS = "EPSS {score} (p{percentile})"
EXPLOIT_REF = "{n} exploit ref"
EXPLOIT_REFS = "{n} exploit refs"
UPDATE_NAME = "Security update available: {package} {version}"
# The summary of a finding from the host's pending updates, with and without the CVE it
# fixes and the distribution's advisory (findings.host_updates).
UPDATE_SUMMARY = "{repository} offers {package} {version} (installed {installed})."
UPDATE_SUMMARY_CVE = ("{repository} offers {package} {version} (installed {installed}), "
                      "which fixes {vuln}.")
UPDATE_SUMMARY_ADVISORY = ("{repository} offers {package} {version} (installed "
                           "{installed}) ({advisory}).")
UPDATE_SUMMARY_CVE_ADVISORY = ("{repository} offers {package} {version} (installed "
                               "{installed}), which fixes {vuln} ({advisory}).")

PHRASES: tuple[str, ...] = (
    NO_WORKAROUND, NO_EXPLOIT, KEV_RANSOMWARE, EPSS, EXPLOIT_REF, EXPLOIT_REFS,
    UPDATE_NAME, UPDATE_SUMMARY, UPDATE_SUMMARY_CVE, UPDATE_SUMMARY_ADVISORY,
    UPDATE_SUMMARY_CVE_ADVISORY)
# What the catalogues must translate ("KEV" is a name, the same in every language).
MSGIDS = PHRASES
PART_SEPARATOR = "; "

# Values that are numbers match digits only, so that "2 exploit refs" cannot be read
# as a package named "2 exploit".
_NUMERIC = {"n", "percentile"}
_FIELD = re.compile(r"\{(\w+)\}")


def _english(message: str) -> str:
    return message


@cache
def _pattern(template: str) -> re.Pattern[str]:
    parts, last = [], 0
    for found in _FIELD.finditer(template):
        parts.append(re.escape(template[last:found.start()]))
        name = found.group(1)
        parts.append(f"(?P<{name}>\\d+)" if name in _NUMERIC else f"(?P<{name}>\\S.*?)")
        last = found.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts), re.S)


def _one(text: str, gettext: Gettext) -> str | None:
    for template in PHRASES:
        found = _pattern(template).fullmatch(text)
        if found:
            return gettext(template).format(**found.groupdict())
    return None


def localise(text: str | None, gettext: Gettext = _english) -> str:
    """``text`` in the language of ``gettext`` when it is a fixed phrase (or a ``"; "``
    list of them), else ``text`` as it is."""
    if not text:
        return text or ""
    whole = _one(text, gettext)
    if whole is not None:
        return whole
    parts = text.split(PART_SEPARATOR)
    if len(parts) > 1:
        shown = [part if part == KEV else _one(part, gettext) for part in parts]
        if all(p is not None for p in shown):
            return PART_SEPARATOR.join(p for p in shown if p is not None)
    return text


def is_phrase(text: str) -> bool:
    """True when ``text`` is a fixed phrase (or a ``"; "`` list of them), not data."""
    return all(part == KEV or _one(part, _english) is not None
               for part in ([text] if _one(text, _english) else
                            text.split(PART_SEPARATOR)))


def exploit_summary(known_exploited: bool, ransomware: bool, epss_score: float | None,
                    epss_percentile: float | None, references: int,
                    vendor_exploited: bool = False) -> str:
    """One line: "KEV (ransomware); EPSS 0.940 (p99); 2 exploit refs" or "none known"."""
    parts = []
    if known_exploited:
        parts.append(KEV_RANSOMWARE if ransomware else KEV)
    if vendor_exploited:
        parts.append(VENDOR_EXPLOITED)
    if epss_score is not None:
        parts.append(EPSS.format(score=f"{epss_score:.3f}",
                                 percentile=int((epss_percentile or 0) * 100)))
    if references:
        parts.append((EXPLOIT_REFS if references > 1 else EXPLOIT_REF).format(n=references))
    return PART_SEPARATOR.join(parts) if parts else NO_EXPLOIT
