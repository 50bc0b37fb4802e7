"""The catalogs are complete: every message the templates, the web code and static/*.js show is translated
in German, French and Spanish, with the same placeholders, and no catalog keeps stale or fuzzy entries.
Fails naming the messages, so `python -m server.web.i18n extract` and a translator can fix them."""

from __future__ import annotations

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from server.web import i18n
from server.web.i18n_catalogs import placeholders, script_msgids, sources

TRANSLATED = ["de", "fr", "es"]


def catalog(lang: str) -> Catalog:
    with i18n.po_path(lang).open("rb") as po:
        return read_po(po, locale=lang)


def key(message: str | tuple[str, str]) -> str:
    return message if isinstance(message, str) else message[0]


@pytest.fixture(scope="module")
def extracted() -> dict[str, str | tuple[str, str]]:
    return {key(message): message for message, _file, _line in sources()}


def test_extraction_finds_templates_server_code_and_scripts(extracted: dict[str, str | tuple[str, str]]) -> None:
    files = {file.split("/")[0] for _message, file, _line in sources()}
    assert files == {"templates", "server", "static"}
    assert "Needs attention" in extracted and "Reconnecting…" in extracted  # a template's, a script's
    assert "Spool #%(id)s assigned." in extracted  # server/web/slot_pages.py's
    assert "Reconnecting…" in script_msgids() and "Needs attention" not in script_msgids()


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_is_translated(lang: str, extracted: dict[str, str | tuple[str, str]]) -> None:
    found = catalog(lang)
    have = {key(m.id): m for m in found if m.id}
    missing = sorted(set(extracted) - set(have))
    assert not missing, f"{lang}: not in the catalog (run `python -m server.web.i18n extract`): {missing}"
    stale = sorted(set(have) - set(extracted))
    assert not stale, f"{lang}: no longer used (run `python -m server.web.i18n extract`): {stale}"
    plural_mismatch = sorted(k for k, m in have.items() if isinstance(m.id, tuple) != isinstance(extracted[k], tuple))
    assert not plural_mismatch, f"{lang}: singular/plural changed (re-extract): {plural_mismatch}"
    untranslated = sorted(k for k, m in have.items()
                          if not m.string or (isinstance(m.string, tuple) and not all(m.string)))
    assert not untranslated, f"{lang}: untranslated: {untranslated}"
    fuzzy = sorted(k for k, m in have.items() if m.fuzzy)
    assert not fuzzy, f"{lang}: fuzzy (check the translation, then drop the flag): {fuzzy}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_the_placeholders(lang: str) -> None:
    wrong = []
    for message in catalog(lang):
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        # A plural may leave out %(num)s in its singular ("1 minute"), never any other placeholder.
        expected = set().union(*(placeholders(i) for i in ids))
        for text in strings:
            got = placeholders(text)
            if got - expected or (expected - {"num"}) - got:
                wrong.append((key(message.id), text))
            if "%" in text.replace("%%", "").replace("%(", ""):
                wrong.append((key(message.id), f"stray %: {text}"))
    assert not wrong, f"{lang}: placeholders differ from the English: {wrong}"


def test_catalogs_compile_and_english_translates_nothing() -> None:
    assert i18n.translations("de").gettext("Needs attention") == "Braucht Aufmerksamkeit"
    assert i18n.translations("fr").ngettext("%(num)s bill", "%(num)s bills", 2) == "%(num)s débits"
    assert i18n.translations("en").gettext("Needs attention") == "Needs attention"
    assert i18n.translations("xx").gettext("Needs attention") == "Needs attention"


def test_the_english_catalog_is_in_step_and_translates_nothing(extracted: dict[str, str | tuple[str, str]]) -> None:
    found = {key(m.id): m for m in catalog(i18n.SOURCE) if m.id}
    assert set(found) == set(extracted), "run `python -m server.web.i18n extract`"
    assert not [k for k, m in found.items() if m.fuzzy or any(m.string if isinstance(m.string, tuple)
                                                                 else [m.string])]
