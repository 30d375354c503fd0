"""The msgids of the dashboard: what its catalogues must translate.

Read from the templates (``_("…")``), the package's modules (``gettext("…")``) and the
data words (``pages.DATA_MSGIDS``); ``python -m patchpilot.server.web.catalogue`` rewrites the
``.po`` files with any new msgid added (translations kept), so a new string is never
silently left in English.
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from patchpilot.server.web.i18n import LANGUAGES, LOCALE_DIR
from patchpilot.server.web.pages import DATA_MSGIDS

HERE = Path(__file__).parent
_CALL = re.compile(r"""(?:\b_|gettext)\(\s*"((?:[^"\\]|\\.)+)"\s*\)""")


def msgids() -> list[str]:
    """Every msgid of the pages, sorted."""
    found = set(DATA_MSGIDS)
    # Every template and every module of the package and its page modules (render.py,
    # pages/*.py, …), so a new page module needs no entry here; not this one, whose
    # docstring shows calls.
    modules = sorted(p for p in HERE.rglob("*.py") if p.resolve() != Path(__file__).resolve())
    for path in [*sorted((HERE / "templates").glob("*.html")), *modules]:
        found.update(m.replace('\\"', '"') for m in _CALL.findall(path.read_text()))
    return sorted(found)


def update() -> None:
    """Add missing msgids to every language's catalogue."""
    ids = msgids()
    for lang in LANGUAGES:
        path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
        if path.exists():
            with path.open("rb") as fh:
                old = read_po(fh, locale=lang)
        else:
            old = Catalog(locale=lang)
        new = Catalog(locale=lang, project="PatchPilot", domain="messages")
        for msgid in ids:
            existing = old.get(msgid)
            new.add(msgid, existing.string if existing is not None else "")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, new, width=100, omit_header=False)


if __name__ == "__main__":
    update()
