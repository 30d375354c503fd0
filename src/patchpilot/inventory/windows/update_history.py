"""A Windows Update history list: one ``KBnnnnnnn: title`` line per installed update.

The Windows Update agent's history (``Microsoft.Update.Session`` → ``QueryHistory``)
holds what ``wmic qfe`` misses: .NET and Office updates, Defender definitions, the
Malicious Software Removal Tool.  The listing read here is the one of wesng's validation
set: ``KB4487017: 2019-02 Cumulative Update for Windows 10 Version 1803 for x64-based
Systems (KB4487017)``.  A KB may appear more than once (a language pack per language).
"""

from __future__ import annotations

import re

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.windows.facts import WindowsFacts, sorted_kbs

_LINE = re.compile(r"^(KB\d{5,8}):\s+(\S.*)$")


def parse_update_history(text: str, source: str) -> WindowsFacts:
    """The KBs of an update-history list; other lines are warned about, not dropped
    silently.

    Raises InventoryFormatError naming ``source`` when no line is ``KBnnnnnnn: title``.
    """
    kbs: list[str] = []
    warnings: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        match = _LINE.match(stripped)
        if match:
            kbs.append(match[1].upper())
        else:
            warnings.append(f"{source}:{number}: not a \"KBnnnnnnn: title\" line; skipped")
    if not kbs:
        raise InventoryFormatError(source, "no \"KBnnnnnnn: title\" line: not an update "
                                           "history list")
    return WindowsFacts(source=source, format="update-history", kbs=sorted_kbs(kbs),
                        warnings=tuple(warnings))
