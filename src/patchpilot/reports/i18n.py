"""Report languages: gettext catalogues (``locale/<lang>/LC_MESSAGES/reports.po``) and
locale-aware numbers and dates from babel.

The ``.po`` files in the repository are the source of truth; they are compiled in memory
when first used (babel's ``read_po``), so no compiled ``.mo`` can go stale beside them.
Each message id is the English text, so a missing translation falls back to English
rather than to an opaque key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib import resources

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

from patchpilot.errors import PatchPilotError
from patchpilot.findings import phrases
from patchpilot.scoring import reasons

LANGUAGES = ("en", "ja")
DOMAIN = "reports"
# Words the reports translate from data -- a priority reason's words, a finding's fixed
# phrases, bands, yes/no -- beside the templates' own: every catalogue must translate each
# (tests/reports/test_japanese.py).
DATA_MSGIDS = (*reasons.MSGIDS, *phrases.MSGIDS, "yes", "no")


class LanguageError(PatchPilotError):
    """A report language that has no catalogue."""


def check_language(lang: str) -> str:
    """``lang`` if a catalogue exists for it, else a :class:`LanguageError`."""
    if lang not in LANGUAGES:
        raise LanguageError(f"lang: {lang!r} is not a report language "
                            f"({', '.join(LANGUAGES)})")
    return lang


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The translated messages of ``lang`` (msgid → msgstr; untranslated ones left out)."""
    check_language(lang)
    path = resources.files("patchpilot.reports").joinpath(
        "locale", lang, "LC_MESSAGES", f"{DOMAIN}.po")
    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in cat
            if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


class Translator:
    """``gettext`` and number/date formatting for one language (what templates call)."""

    def __init__(self, lang: str) -> None:
        self.lang = check_language(lang)
        self.locale = Locale.parse(lang)
        self._messages = catalogue(lang)

    def gettext(self, message: str, **values: object) -> str:
        """The translation of ``message``, with ``{name}`` placeholders filled in."""
        text = self._messages.get(message, message)
        return text.format(**values) if values else text

    def number(self, value: float | int | None, digits: int = 1) -> str:
        """A number in the locale's notation ("1,234.5"); "–" for none."""
        if value is None:
            return "–"
        if isinstance(value, int):
            return format_decimal(value, locale=self.locale)
        return format_decimal(round(value, digits), format=f"#,##0.{'#' * digits}",
                              locale=self.locale)

    def percent(self, value: float | None) -> str:
        """A 0..1 ratio as a percentage ("87.5%"); "–" when nothing was due."""
        if value is None:
            return "–"
        return format_percent(value, format="#,##0.#%", locale=self.locale)

    def date(self, moment: datetime | None) -> str:
        """A date in the locale's medium form ("Nov 26, 2026" / "2026/11/26")."""
        return format_date(moment, format="medium", locale=self.locale) if moment else "–"

    def short_date(self, moment: datetime) -> str:
        """A compact day and month for chart axes ("11/26")."""
        return format_date(moment, format="M/d", locale=self.locale)

    def datetime(self, moment: datetime) -> str:
        """A date and time in the locale's medium form."""
        return format_datetime(moment, format="medium", locale=self.locale)


def translator(lang: str) -> Translator:
    """The translator of a report language."""
    return Translator(lang)


Gettext = Callable[..., str]
