"""Run the Spoolman stand-in on its own: `python -m server.sim.spoolman [--port 7912] [--empty]`.

Handy for pointing a development Layerwise (or a browser) at a Spoolman without installing one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from server.sim.spoolman.seed import seed_demo
from server.sim.spoolman.standin import SpoolmanStandin
from server.sim.spoolman.store import SpoolmanStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.sim.spoolman", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7912, help="port (default 7912, Spoolman's; 0 = any free)")
    parser.add_argument("--empty", action="store_true", help="start without the demo vendors, filaments and spools")
    parser.add_argument("--api-key", default=None,
                        help="answer 401 unless requests carry 'Authorization: Bearer API_KEY'")
    args = parser.parse_args(argv)
    store = SpoolmanStore()
    if not args.empty:
        seed_demo(store)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(SpoolmanStandin(store, host=args.host, port=args.port, api_key=args.api_key)))
    return 0


async def _serve(standin: SpoolmanStandin) -> None:
    async with standin:
        print(f"Spoolman stand-in listening on {standin.url} (API under /api/v1)", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    raise SystemExit(main())
