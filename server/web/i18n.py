"""The web pages' language: gettext catalogs (``server/web/locale/<lang>/LC_MESSAGES/messages.po``), which one a
request gets (a cookie set by the page footer's picker, else the browser's ``Accept-Language``), and Babel's
number and date formats for it. The JSON API and the logs stay English.

The ``.po`` files are read at start (Babel's ``read_po``, compiled in memory with ``write_mo``): no generated
``.mo`` files to forget in a checkout, a wheel or the Docker image, and a few hundred messages take
milliseconds. ``python -m server.web.i18n extract`` re-extracts the messages and updates the catalogs
(``server/web/i18n_catalogs.py``).
"""

from __future__ import annotations

import gettext
import json
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel import negotiate_locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from jinja2 import pass_context
from jinja2.runtime import Context

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SOURCE = "en"  # the msgids are English: its catalog translates nothing
LANGUAGES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}
COOKIE_NAME = "layerwise_lang"
_SCOPE_KEY = "layerwise_locale"  # the request's language, worked out once per request


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang`` (English and unknown languages translate nothing)."""
    if lang == SOURCE or lang not in LANGUAGES:
        return gettext.NullTranslations()
    with po_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)  # a fuzzy entry is a guess: English is better than a wrong text
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The language for a request: the picker's cookie if it names one we have, else the browser's best match
    among ours (``de-AT`` gets ``de``), else English."""
    if cookie in LANGUAGES:
        return cookie  # type: ignore[return-value]
    wanted = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            wanted.append((quality, tag.strip()))
    preferred = [tag for _, tag in sorted(wanted, key=lambda item: -item[0])]  # stable: header order on ties
    return negotiate_locale(preferred, list(LANGUAGES), sep="-") or negotiate_locale(
        [tag.split("-")[0] for tag in preferred], list(LANGUAGES)) or SOURCE


def locale_of_scope(scope: Mapping[str, Any]) -> str:
    """The language of an ASGI request (worked out once, kept in its scope)."""
    state = scope.get("state")
    if isinstance(state, dict) and _SCOPE_KEY in state:
        return state[_SCOPE_KEY]  # type: ignore[no-any-return]
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    cookie = None
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME:
            cookie = value
    lang = choose(cookie, headers.get("accept-language"))
    if isinstance(state, dict):
        state[_SCOPE_KEY] = lang
    return lang


class Translator:
    """``_`` for server code that writes a page's words, like the templates': ``_("%(n)s left", n=3)``,
    ``_.ngettext("%(num)s bill", "%(num)s bills", n)`` (``num`` is filled in)."""

    def __init__(self, catalog: gettext.NullTranslations) -> None:
        self.catalog = catalog

    # Positional-only, so a message's own placeholders may be called anything (``n=``, ``message=``).
    def __call__(self, message: str, /, **values: Any) -> str:
        text = self.catalog.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, count: int, /, **values: Any) -> str:
        return self.catalog.ngettext(singular, plural, count) % {"num": count, **values}


def gettext_for(request: Any) -> Translator:
    """``_`` in the request's language."""
    return gettext_in(locale_of_scope(request.scope))


def gettext_in(lang: str) -> Translator:
    """``_`` in one language."""
    return Translator(translations(lang))


# ``_`` for code without a request (the JSON API, tests): the English, filled in.
english = Translator(gettext.NullTranslations())


async def vary_on_language(message: Mapping[str, Any], _scope: Mapping[str, Any]) -> None:
    """A ``before_send`` hook: a page's words depend on ``Accept-Language`` and the picker's cookie, so no
    cache may hand one browser's page to another (HTML only: the API and static files are the same for all)."""
    if message["type"] != "http.response.start":
        return
    headers = message["headers"]
    if any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers):
        headers.append((b"vary", b"Accept-Language, Cookie"))


# ----- Jinja ----------------------------------------------------------------------------------------


def _lang(context: Context) -> str:
    request = context.get("request")
    return locale_of_scope(request.scope) if request is not None else SOURCE


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(_lang(context)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(_lang(context)).ngettext(singular, plural, n)


@pass_context
def _translate(context: Context, message: str | None) -> str:
    """``{{ value | translate }}``: a message chosen in code (marked there with ``N_``), looked up as it is,
    never %-formatted (a ``%`` in text from elsewhere must not break the page)."""
    return translations(_lang(context)).gettext(message) if message else (message or "")


@pass_context
def _page_lang(context: Context) -> str:
    return _lang(context)


@pass_context
def _number(context: Context, value: float | None, digits: int = 0, sign: bool = False) -> str:
    """``12.5 | number(1)``: "12.5" in English, "12,5" in German."""
    if value is None:
        return "—"
    pattern = ("+" if sign else "") + "#,##0" + ("." + "0" * digits if digits else "")
    if sign:
        pattern += ";-" + pattern[1:]
    return format_decimal(value, format=pattern, locale=_lang(context))


@pass_context
def _percent(context: Context, value: float | None) -> str:
    """A whole percentage (``42`` → "42 %" in German, "42%" in English)."""
    return "—" if value is None else format_percent(value / 100, locale=_lang(context))


@pass_context
def _when(context: Context, value: datetime | None, seconds: bool = False) -> str:
    """A UTC time as the language writes it ("05.12.2026, 08:10" in German)."""
    if value is None:
        return ""
    return format_datetime(value, format="short" if not seconds else "medium", tzinfo=None,
                           locale=_lang(context))


@pass_context
def _script_messages(context: Context) -> str:
    """The translations static/*.js needs, as JSON for the page's ``<script type="application/json">``
    block (the CSP forbids inline scripts; a data block is not one)."""
    return script_messages(_lang(context))


@cache
def script_messages(lang: str) -> str:
    from server.web.i18n_catalogs import script_msgids  # extraction code: only imported when a page needs it

    catalog = translations(lang)
    found = {msgid: catalog.gettext(msgid) for msgid in script_msgids()} if lang != SOURCE else {}
    # "<" escaped so a translation can never close the script block.
    return json.dumps({k: v for k, v in found.items() if v != k}, ensure_ascii=False).replace("<", "\\u003c")


def install(environment: Any) -> None:
    """Templates translate with ``_("…")`` (new-style: ``_("%(n)s left", n=3)``) into the request's language;
    ``page_lang()``, ``number``, ``percent`` and ``when`` write the rest of it."""
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(gettext=_gettext, ngettext=_ngettext, newstyle=True)
    environment.globals.update(page_lang=_page_lang, script_messages=_script_messages, languages=LANGUAGES)
    environment.filters.update(number=_number, percent=_percent, when=_when, translate=_translate)


def main(argv: list[str] | None = None) -> int:
    from server.web import i18n_catalogs

    return i18n_catalogs.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
