"""Which plain-HTTP requests go to "Set up this phone" (server/web/phone_setup.py): pure decisions."""

from __future__ import annotations

from server.web.phone_setup import STAY_COOKIE, qr_svg, safe_next, setup_redirect

PAGE = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_a_page_view_goes_to_the_setup_page_and_comes_back_after() -> None:
    assert setup_redirect("GET", "/", "", PAGE) == "/setup"
    assert setup_redirect("GET", "/jobs", "page=2", PAGE) == "/setup?next=%2Fjobs%3Fpage%3D2"
    assert setup_redirect("HEAD", "/ledger", "", PAGE) == "/setup?next=%2Fledger"


def test_everything_else_is_served_as_it_is() -> None:
    for path in ("/setup", "/setup/layerwise-ca.crt", "/static/app.js", "/api/v1/printers", "/events",
                 "/healthz", "/manifest.webmanifest", "/sw.js", "/offline"):
        assert setup_redirect("GET", path, "", PAGE) is None, path
    assert setup_redirect("POST", "/", "", PAGE) is None
    assert setup_redirect("GET", "/", "", {"accept": "application/json"}) is None
    assert setup_redirect("GET", "/", "", {**PAGE, "hx-request": "true"}) is None
    assert setup_redirect("GET", "/", "", {**PAGE, "x-forwarded-proto": "https"}) is None  # a reverse proxy's
    assert setup_redirect("GET", "/", "", {**PAGE, "cookie": f"a=b; {STAY_COOKIE}=1"}) is None
    for host in ("localhost:7913", "127.0.0.1:7913", "[::1]:7913", "app.localhost"):  # secure contexts already
        assert setup_redirect("GET", "/", "", {**PAGE, "host": host}) is None, host
    assert setup_redirect("GET", "/", "", {**PAGE, "host": "192.168.1.20:7913"}) == "/setup"


def test_next_stays_on_this_site() -> None:
    assert safe_next("/jobs?page=2") == "/jobs?page=2"
    for value in (None, "", "https://evil.example", "//evil.example/x", "/\\evil.example", "jobs"):
        assert safe_next(value) == "/"


def test_the_qr_code_is_inline_svg() -> None:
    svg = qr_svg("https://192.168.1.20:7914/")
    assert svg.startswith("<svg") and "<?xml" not in svg
