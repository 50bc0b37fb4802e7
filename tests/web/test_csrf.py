from server.web.csrf import bearer_token, csrf_problem, new_token, token_cookie, usable_token


def test_matching_header_passes() -> None:
    token = new_token()
    assert csrf_problem(token, token, "same-origin") is None
    assert csrf_problem(token, token, None) is None  # older browsers send no Fetch Metadata


def test_missing_or_wrong_header_is_refused() -> None:
    token = new_token()
    assert csrf_problem(token, None, "same-origin") is not None
    assert csrf_problem(token, new_token(), "same-origin") is not None
    assert csrf_problem(None, token, "same-origin") is not None


def test_cross_site_is_refused_even_with_a_token() -> None:
    token = new_token()
    assert csrf_problem(token, token, "cross-site") == "request from another site"
    assert csrf_problem(token, token, "same-site") == "request from another site"


def test_malformed_cookie_is_not_a_token() -> None:
    assert usable_token("short") is None
    assert usable_token("a" * 40 + ";") is None
    token = new_token()
    assert usable_token(token) == token


def test_cookie_is_http_only() -> None:
    cookie = token_cookie(new_token(), secure=False)
    assert cookie.httponly and cookie.samesite == "lax" and cookie.path == "/"


def test_bearer_token_only_for_the_bearer_scheme() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Bearer") == ""  # a bearer header without a token: refused, not ignored
    assert bearer_token("Basic dXNlcjpwdw==") is None  # a login proxy's header: the CSRF check decides
    assert bearer_token(None) is None and bearer_token("") is None
