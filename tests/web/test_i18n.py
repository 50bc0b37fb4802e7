"""The page language: chosen from the cookie or Accept-Language (pure), shown through the real app with
Litestar's test client (Accept-Language de/fr/es/unknown, the footer's picker and its cookie), and Babel's
number, percent and date formats in the templates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jinja2 import Environment
from litestar.testing import TestClient

from server.config import Settings
from server.config.models import ServerConfig
from server.runtime import Runtime
from server.web import csrf, i18n
from server.web.app import create_app


@pytest.mark.parametrize(("cookie", "header", "expected"), [
    (None, "de-DE,de;q=0.9,en;q=0.8", "de"),
    (None, "fr-CA", "fr"),
    (None, "es-419,es;q=0.9", "es"),
    (None, "ja, zh;q=0.5", "en"),
    (None, "", "en"),
    (None, None, "en"),
    (None, "en-GB;q=0.4, fr;q=0.9", "fr"),  # the quality decides, not the order
    (None, "de;q=0, es", "es"),  # q=0 means "not this one"
    (None, "*", "en"),
    (None, "de;q=abc, es;q=0.5", "es"),  # a broken quality counts as 0
    ("fr", "de-DE", "fr"),  # the picker's cookie wins
    ("xx", "es", "es"),  # an unknown cookie is ignored
])
def test_choose(cookie: str | None, header: str | None, expected: str) -> None:
    assert i18n.choose(cookie, header) == expected


def render(source: str, accept_language: str, **values: Any) -> str:
    environment = Environment(autoescape=True)
    i18n.install(environment)
    scope = {"headers": [(b"accept-language", accept_language.encode())], "state": {}}
    return environment.from_string(source).render(request=SimpleNamespace(scope=scope), **values)


def test_numbers_percentages_and_times_follow_the_language() -> None:
    page = "{{ 1234.5 | number(1) }}|{{ 42 | percent }}|{{ -3.25 | number(1, sign=true) }}|{{ at | when }}"
    at = datetime(2026, 12, 5, 14, 7, tzinfo=UTC)
    assert render(page, "en", at=at) == "1,234.5|42%|-3.2|12/5/26, 2:07\u202fPM"
    assert render(page, "de", at=at) == "1.234,5|42\xa0%|-3,2|05.12.26, 14:07"
    assert render(page, "fr", at=at).startswith("1\u202f234,5|42\xa0%|-3,2|05/12/2026")
    assert render("{{ 0.5 | number(2, sign=true) }}", "es") == "+0,50"


def test_translated_text_escapes_values_and_never_breaks_on_percent() -> None:
    page = '{{ _("There is no job %(id)s.", id=name) }}|{{ text | translate }}'
    assert render(page, "de", name="<b>", text="100% sure") == "Es gibt keinen Auftrag &lt;b&gt;.|100% sure"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Any]]:
    # The demo's rules: access control off, so the test client's made-up address may look at pages.
    app = create_app(Runtime.build(Settings(server=ServerConfig(data_dir=tmp_path / "data"))), demo=True)
    with TestClient(app, base_url="http://127.0.0.1:7913") as test_client:
        yield test_client


def lang_of(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', html)
    assert found, html[:200]
    return found.group(1)


@pytest.mark.parametrize(("header", "lang", "words"), [
    ("de-DE,de;q=0.9", "de", "Noch keine Drucker eingerichtet"),
    ("fr-FR,fr;q=0.9", "fr", "Aucune imprimante configurée"),
    ("es-ES", "es", "Aún no hay impresoras configuradas"),
    ("ja-JP", "en", "No printers configured yet"),
])
def test_the_browser_language_chooses_the_page_language(client: TestClient[Any], header: str, lang: str,
                                                        words: str) -> None:
    page = client.get("/", headers={"accept-language": header})
    assert page.status_code == 200
    assert lang_of(page.text) == lang and words in page.text
    messages = re.search(r'<script type="application/json" id="i18n-messages">(.*?)</script>', page.text)
    assert messages is not None
    assert ("Reconnecting" in messages.group(1)) is (lang != "en")  # the scripts' words come along
    assert "Accept-Language" in page.headers["vary"]  # no cache hands this page to another language
    # Another page, too.
    assert lang_of(client.get("/jobs", headers={"accept-language": header}).text) == lang


def test_the_picker_sets_a_cookie_that_wins_over_the_browser(client: TestClient[Any]) -> None:
    german = {"accept-language": "de-DE"}
    page = client.get("/", headers=german)
    token = client.cookies.get(csrf.COOKIE_NAME)
    assert token and f'name="csrf_token" value="{token}"' in page.text and 'action="/language"' in page.text
    chosen = client.post("/language", data={"csrf_token": token, "lang": "es", "next": "/jobs"}, headers=german,
                         follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"] == "/jobs"
    assert "layerwise_lang=es" in chosen.headers["set-cookie"] and "HttpOnly" in chosen.headers["set-cookie"]
    page = client.get("/", headers=german)
    assert lang_of(page.text) == "es" and 'value="es" lang="es" selected' in page.text
    # Back to the browser's own language? Pick it; an unknown one changes nothing.
    client.post("/language", data={"csrf_token": token, "lang": "xx", "next": "/"}, follow_redirects=False)
    assert lang_of(client.get("/", headers=german).text) == "es"


def test_the_picker_needs_the_form_token(client: TestClient[Any]) -> None:
    client.get("/")
    refused = client.post("/language", data={"csrf_token": "x" * 43, "lang": "fr", "next": "/"},
                          follow_redirects=False)
    assert refused.status_code == 403 and "layerwise_lang" not in refused.headers.get("set-cookie", "")
    away = client.post("/language", data={"csrf_token": client.cookies.get(csrf.COOKIE_NAME), "lang": "fr",
                                          "next": "https://elsewhere.example/"}, follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/"  # never sent to another site


def test_the_api_stays_english(client: TestClient[Any]) -> None:
    answer = client.get("/api/v1/jobs?offset=-1", headers={"accept-language": "de"})
    assert answer.status_code == 400 and "Braucht" not in answer.text
    assert "Accept-Language" not in answer.headers.get("vary", "")


def test_the_limited_printer_sentence_is_translated_around_the_printers_own_words() -> None:
    from server.printer import refusals
    from server.web.views import limited_words

    limited = (f"{refusals.LIMITED} (pushall: no answer within 20 s). {refusals.LIMITED_CONSEQUENCES}. "
               f"{refusals.LIMITED_FIX}.")
    german = limited_words(limited, i18n.gettext_in("de"))
    assert german.startswith("Eingeschränkt: Der Drucker lehnt Anfragen ab (pushall: no answer within 20 s).")
    assert "Entwicklermodus" in german
    assert limited_words(limited).startswith("Limited: the printer refuses requests (pushall: no answer within 20 s)")
    assert limited_words("something else", i18n.gettext_in("de")) == "something else"


def test_server_code_translates_with_any_placeholder_names() -> None:
    _ = i18n.gettext_in("de")
    released = _.ngettext("Filament %(n)s came from tray %(tray)s: %(num)s bill released.",
                          "Filament %(n)s came from tray %(tray)s: %(num)s bills released.", 2, n=1, tray="A1")
    assert released == "Filament 1 kam aus Schacht A1: 2 Buchungen freigegeben."
    assert _("Spool #%(id)s assigned.", id=3) == "Spule #3 zugewiesen."
    assert i18n.english.ngettext("%(num)s bill", "%(num)s bills", 1) == "1 bill"


@pytest.mark.parametrize("used", [None, 0.1, 500.0])  # the old spool gone, short (floored), with enough used
def test_the_correction_preview_says_in_english_what_the_api_says(used: float | None) -> None:
    from jinja2 import FileSystemLoader

    from server.assets import templates_dir
    from server.billing import corrections
    from server.spoolman import Filament, Spool

    filament = Filament(id=1, density=1.24, diameter=1.75)
    old = None if used is None else Spool(id=1, filament=filament, used_weight=used)
    move = corrections.Movable(job_name="Vase", printer="X1C", mm=120.0, grams=0.36, filament_index=0)
    plan = corrections.plan(move, 5, 1, 7, old, Spool(id=7, filament=filament))
    assert plan.floored is (used is None or used < 0.3)  # a gone spool counts as floored too
    environment = Environment(autoescape=True, loader=FileSystemLoader(templates_dir()))
    i18n.install(environment)
    scope = {"headers": [(b"accept-language", b"en")], "state": {}}
    html = environment.get_template("partials/correction_preview.html").render(
        request=SimpleNamespace(scope=scope), plan=plan)
    assert plan.message in html


def test_sign_in_refusals_name_their_reason_in_the_page_language() -> None:
    from server.auth import passwords
    from server.web.auth_pages import problem_words

    _ = i18n.gettext_in("fr")
    assert problem_words(str(passwords.password_problem("x")), _) == (
        f"le mot de passe doit comporter au moins {passwords.MIN_LENGTH} caractères")
    assert problem_words(str(passwords.password_problem("x" * 40, "y" * 40)), _) == "les deux mots de passe diffèrent"
    assert problem_words("something new", _) == "something new"
