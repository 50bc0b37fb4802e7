"""``layerwise user add|list|remove``: the people who may sign in to the web app.

``add`` creates a person or sets a new password (which signs out their sessions); it asks for the
password twice without echo, or reads one line from stdin with ``--password-stdin``.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from server.db.shell import add_data_arguments, open_db


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a person, or set a new password for one")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    actions.add_parser("list", help="list the people who may sign in")
    remove = actions.add_parser("remove", help="remove a person and sign out their sessions")
    remove.add_argument("name")
    for sub in (add, actions.choices["list"], remove):
        add_data_arguments(sub)


def read_password(from_stdin: bool) -> str | None:
    """The new password, or ``None`` after saying why not (on stderr)."""
    from server.auth.passwords import password_problem

    if from_stdin:
        password, again = sys.stdin.readline().rstrip("\r\n"), None
    else:
        password = getpass.getpass("New password: ")
        again = getpass.getpass("Again: ")
    problem = password_problem(password, again)
    if problem:
        print(f"layerwise: {problem}", file=sys.stderr)
        return None
    return password


def run(args: argparse.Namespace) -> int:
    from server.auth import store
    from server.auth.passwords import name_problem

    if args.action == "list":
        for name in store.user_names(open_db(args)):
            print(name)
        return 0
    if args.action == "remove":
        if not store.remove_user(open_db(args), args.name):
            print(f"layerwise: no user named {args.name!r}", file=sys.stderr)
            return 1
        print(f"removed {args.name}")
        return 0
    problem = name_problem(args.name)
    if problem:
        print(f"layerwise: {problem}", file=sys.stderr)
        return 2
    password = read_password(args.password_stdin)
    if password is None:
        return 2
    created = store.set_password(open_db(args), args.name, password)
    print(f"{'created' if created else 'new password for'} {args.name}")
    return 0
