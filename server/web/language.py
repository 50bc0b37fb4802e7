"""The footer's language picker: remembers the choice in a cookie for this browser (else the browser's own
languages decide, server/web/i18n.py)."""

from __future__ import annotations

from litestar import Request, post
from litestar.datastructures import Cookie
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect

from server.web import csrf, i18n
from server.web.auth_pages import FORM_FIELD, safe_next


@post("/language", include_in_schema=False, status_code=303, opt={csrf.FORM_CHECKED: True})
async def set_language(request: Request) -> Redirect:
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    target = safe_next(form.get("next"))
    problem = csrf.csrf_problem(request.cookies.get(csrf.COOKIE_NAME), form.get(FORM_FIELD),
                                request.headers.get("sec-fetch-site"))
    if problem is not None:
        raise PermissionDeniedException(problem)  # like every other route that changes something
    lang = form.get("lang", "")
    if lang not in i18n.LANGUAGES:
        return Redirect(target, status_code=303)  # nothing changed; the page shows the language it had
    cookie = Cookie(key=i18n.COOKIE_NAME, value=lang, max_age=400 * 24 * 3600, path="/", httponly=True,
                    samesite="lax", secure=request.url.scheme == "https")
    return Redirect(target, status_code=303, cookies=[cookie])


handlers = [set_language]
