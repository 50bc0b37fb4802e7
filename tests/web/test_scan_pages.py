"""What /scan answers before it asks Spoolman or the printers (the rest runs in test_scan_browser.py)."""

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from server.runtime import Runtime
from server.web.scan_pages import _choice


def choice(code: str, runtime: object = None) -> tuple[int, dict[str, Any]]:
    return asyncio.run(_choice(cast(Runtime, runtime), code, None))


def test_a_code_that_is_not_a_label_is_a_bad_request_in_words() -> None:
    assert choice("hello") == (400, {"problem": "“hello” is not a Spoolman label. Spoolman's labels read "
                                     "web+spoolman:s-<id> (a spool), web+spoolman:f-<id> (a filament) or a "
                                     "link ending in /spool/show/<id>."})


def test_a_spool_without_spoolman_configured_says_how_to_fix_it() -> None:
    status, values = choice("web+spoolman:s-3", SimpleNamespace(spoolman=None))
    assert status == 503
    assert "set [spoolman] url" in values["problem"]
