import pytest

from server.web.labels import FilamentCode, NotALabel, SpoolCode, parse_label


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WEB+SPOOLMAN:S-3", SpoolCode(3)),
        ("web+spoolman:s-42", SpoolCode(42)),
        ("Web+Spoolman:S-0007", SpoolCode(7)),
        ("  WEB+SPOOLMAN:S-12\n", SpoolCode(12)),
        ("WEB+SPOOLMAN:F-5", FilamentCode(5)),
        ("web+spoolman:f-9", FilamentCode(9)),
        ("http://spoolman.lan:7912/spool/show/15", SpoolCode(15)),
        ("https://example.org/tools/spoolman/spool/show/15/", SpoolCode(15)),
        ("HTTPS://EXAMPLE.ORG/SPOOL/SHOW/8", SpoolCode(8)),
        ("http://spoolman.lan/filament/show/4", FilamentCode(4)),
        ("http://spoolman.lan/spool/show/6?ref=label", SpoolCode(6)),
    ],
)
def test_spoolman_codes(text: str, expected: object) -> None:
    assert parse_label(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "S-3",
        "WEB+SPOOLMAN:S-",
        "WEB+SPOOLMAN:S-0",
        "WEB+SPOOLMAN:X-3",
        "WEB+SPOOLMAN:S-3 extra",
        "xWEB+SPOOLMAN:S-3",
        "WEB+SPOOLMAN:S--3",
        "http://spoolman.lan/spool/show/",
        "http://spoolman.lan/spool/show/3/edit",
        "http://spoolman.lan/vendor/show/3",
        "ftp://spoolman.lan/spool/show/3",
        "/spool/show/3",
        "WEB+SPOOLMAN:S-12345678901",
    ],
)
def test_anything_else_is_not_a_label(text: str) -> None:
    assert parse_label(text) == NotALabel(text)
