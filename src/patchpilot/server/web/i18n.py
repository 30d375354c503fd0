"""The dashboard's languages: gettext catalogues (``locale/<lang>/LC_MESSAGES/messages.po``).

Only the ``.po`` files live in the repository; they are compiled in memory with babel the
first time a language is used, so a catalogue edit can never go stale behind an old
``.mo``.  The language of a request: the user's own (``users.language``), else the best
match of the browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "ja")
DEFAULT = "en"
# The name of each language in itself, for the switch link.
NATIVE_NAMES = {"en": "English", "ja": "日本語"}


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (English strings are their own msgids)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang not in LANGUAGES or not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def negotiate(accept_language: str | None) -> str:
    """The best of LANGUAGES for an ``Accept-Language`` header (RFC 9110 §12.5.4)."""
    if not accept_language:
        return DEFAULT
    weighted = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            # Stable: equal weights keep the browser's order.
            weighted.append((-quality, index, tag.replace("-", "_")))
    preferred = [tag for _, _, tag in sorted(weighted) if tag != "*"]
    found = Locale.negotiate(preferred, list(LANGUAGES), sep="_")
    return str(found) if found else DEFAULT


def choose(user_language: str | None, accept_language: str | None) -> str:
    """The language of a request."""
    if user_language in LANGUAGES:
        return user_language
    return negotiate(accept_language)
