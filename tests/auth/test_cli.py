"""layerwise user / token, run through the real command-line entry point on a real data directory."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from server.auth import store
from server.cli import main
from server.db import open_database


def run(*argv: str, stdin: str = "") -> int:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(list(argv))
    finally:
        sys.stdin = old


def test_user_add_from_stdin_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    assert run("user", "add", "ann", "--password-stdin", "--data-dir", data, stdin="correct horse\n") == 0
    assert store.check_password(open_database(tmp_path), "ann", "correct horse")
    assert run("user", "add", "ann", "--password-stdin", "--data-dir", data, stdin="short\n") == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert run("user", "list", "--data-dir", data) == 0
    assert capsys.readouterr().out == "ann\n"
    assert run("user", "remove", "ann", "--data-dir", data) == 0
    assert run("user", "remove", "ann", "--data-dir", data) == 1


def test_user_add_asks_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["correct horse", "correct hrose"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert run("user", "add", "ann", "--data-dir", str(tmp_path)) == 2
    assert "differ" in capsys.readouterr().err
    assert not store.has_users(open_database(tmp_path))


def test_tokens_are_printed_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    assert run("token", "create", "ha", "--read-only", "--data-dir", data) == 0
    token = capsys.readouterr().out.strip()
    assert store.verify_token(open_database(tmp_path), token) is not None
    assert run("token", "create", "ha", "--data-dir", data) == 1
    assert run("token", "list", "--data-dir", data) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("ha\tread-only") and token not in listed
    assert run("token", "revoke", "ha", "--data-dir", data) == 0
    assert store.verify_token(open_database(tmp_path), token) is None
