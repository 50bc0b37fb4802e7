"""``layerwise token create|list|revoke``: API tokens for scripts and Home Assistant.

A token is sent as ``Authorization: Bearer lw_...``; it is printed once, at creation, and stored only as
its SHA-256. ``--read-only`` tokens may only read (GET); anything else is answered 403.
"""

from __future__ import annotations

import argparse
import sys

from server.db.shell import add_data_arguments, open_db


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a token and print it (once)")
    create.add_argument("name", help="what the token is for, such as home-assistant")
    create.add_argument("--read-only", action="store_true", help="the token may only read (GET requests)")
    listing = actions.add_parser("list", help="list the tokens (names, never the tokens)")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("name")
    for sub in (create, listing, revoke):
        add_data_arguments(sub)


def run(args: argparse.Namespace) -> int:
    from server.auth import store
    from server.auth.passwords import name_problem

    if args.action == "list":
        for token in store.list_tokens(open_db(args)):
            used = token.last_used.strftime("%Y-%m-%d %H:00") if token.last_used else "never"
            access = "read-only" if token.read_only else "read-write"
            print(f"{token.name}\t{access}\tcreated {token.created_at:%Y-%m-%d}\tlast used {used}")
        return 0
    if args.action == "revoke":
        if not store.revoke_token(open_db(args), args.name):
            print(f"layerwise: no token named {args.name!r}", file=sys.stderr)
            return 1
        print(f"revoked {args.name}")
        return 0
    problem = name_problem(args.name)
    if problem:
        print(f"layerwise: {problem}", file=sys.stderr)
        return 2
    token = store.create_token(open_db(args), args.name, read_only=args.read_only)
    if token is None:
        print(f"layerwise: a token named {args.name!r} exists; revoke it first", file=sys.stderr)
        return 1
    print(token)
    print("Keep it now: it is not shown again. Send it as 'Authorization: Bearer <token>'.", file=sys.stderr)
    return 0
