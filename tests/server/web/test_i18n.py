"""Every string the pages show is in both catalogues, and the catalogues compile."""

from __future__ import annotations

from babel.messages.pofile import read_po

from patchpilot.server.web import i18n
from patchpilot.server.web.catalogue import msgids


def _catalogue(lang: str) -> dict[str, str]:
    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {m.id: m.string for m in read_po(fh, locale=lang) if m.id}


def test_every_msgid_is_in_both_catalogues() -> None:
    ids = set(msgids())
    assert len(ids) > 100
    for lang in i18n.LANGUAGES:
        # `python -m patchpilot.server.web.catalogue` adds what is missing.
        assert ids <= set(_catalogue(lang)), (lang, sorted(ids - set(_catalogue(lang))))


def test_every_japanese_string_is_translated() -> None:
    untranslated = sorted(k for k, v in _catalogue("ja").items() if not v)
    assert untranslated == []


def test_compiled_catalogues_translate() -> None:
    assert i18n.translations("ja").gettext("Overview") == "概要"
    assert i18n.translations("ja").gettext("%(n)s findings") % {"n": 3} == "検出 3 件"
    assert i18n.translations("en").gettext("false_positive") == "false positive"
    assert i18n.translations("en").gettext("Overview") == "Overview"


def test_accept_language() -> None:
    assert i18n.negotiate("ja-JP,ja;q=0.9,en;q=0.8") == "ja"
    assert i18n.negotiate("fr-FR,en;q=0.5,ja;q=0.4") == "en"
    assert i18n.negotiate("de, ja;q=0.1") == "ja"
    assert i18n.negotiate(None) == "en" and i18n.negotiate("de") == "en"
    assert i18n.choose("ja", "en") == "ja" and i18n.choose(None, "ja") == "ja"
