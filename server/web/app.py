"""Litestar app factory: pages, JSON API, live events, static files."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.config.compression import CompressionConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from server import __version__
from server.assets import static_dir, templates_dir
from server.auth.gate import Gate
from server.home_assistant.bridge import lifespans as home_assistant_lifespans
from server.runtime import Runtime
from server.web import (
    api,
    auth_pages,
    csrf,
    events,
    farm_pages,
    forecast_api,
    forecast_pages,
    history,
    hosts,
    i18n,
    language,
    ledger_pages,
    metrics,
    pages,
    phone_setup,
    reports,
    scan_pages,
    schema_page,
    security,
    slot_pages,
)


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def runs_demo(runtime: Runtime) -> bool:
    """The runtime is ``layerwise demo``'s: its virtual printer, known by the demo's own serial and code."""
    from server.sim.demo import DEMO_ACCESS_CODE, DEMO_SERIAL  # only the demo's constants

    return any(p.serial == DEMO_SERIAL and p.access_code.get_secret_value() == DEMO_ACCESS_CODE
               for p in runtime.settings.printers)


class _GateTokens:
    """The CSRF check's token verifier: a valid API token of access control (read-only ones are
    refused before, by the access-control middleware)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def verify(self, token: str) -> bool:
        return self.gate.verify_bearer(token) is not None


def _with_gettext(engine: JinjaTemplateEngine) -> None:
    """Templates mark what people read with ``_("…")`` (new-style gettext: ``_("%(n)s left", n=3)``), in the
    request's language (server/web/i18n.py)."""
    i18n.install(engine.engine)


def create_app(runtime: Runtime, *, manage_lifespan: bool = True, demo: bool | None = None,
               token_verifier: csrf.TokenVerifier | None = None) -> Litestar:
    """``manage_lifespan=False`` lets a caller that already started the runtime reuse it. ``demo`` makes
    every page say it is the demo (None: it is when the runtime runs the demo's virtual printer).
    ``token_verifier`` lets scripts change things with a bearer token instead of the CSRF token
    (by default: the API tokens of access control). Access control (server/auth) is off for the demo."""
    demo = runs_demo(runtime) if demo is None else demo
    gate = Gate(runtime.db, runtime.settings.auth, demo=demo)
    return Litestar(
        route_handlers=[
            healthz,
            api.router,
            events.stream,
            *pages.handlers,
            *slot_pages.handlers,
            *ledger_pages.handlers,
            *farm_pages.handlers,
            *scan_pages.handlers,
            *history.handlers,
            *phone_setup.handlers,
            *auth_pages.handlers,
            *language.handlers,
            *forecast_pages.handlers,
            *forecast_api.handlers,
            *metrics.handlers,
            *reports.handlers,
            create_static_files_router(path="/static", directories=[static_dir()], include_in_schema=False),
        ],
        dependencies={"runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False)},
        lifespan=[runtime.lifespan, *home_assistant_lifespans(runtime)] if manage_lifespan else [],
        template_config=TemplateConfig(directory=templates_dir(), engine=JinjaTemplateEngine,
                                       engine_callback=forecast_pages.template_globals(runtime, _with_gettext)),
        openapi_config=OpenAPIConfig(title="Layerwise", version=__version__, path="/api/v1/schema",
                                     render_plugins=[schema_page.SchemaPage(), JsonRenderPlugin()]),
        state=State({"demo": demo, "auth": gate, csrf.VERIFIER_STATE: token_verifier or _GateTokens(gate)}),
        exception_handlers={**security.exception_handlers, **api.exception_handlers},
        # Every route: the Host check (DNS rebinding), access control, the CSRF check on what changes state,
        # security headers.
        middleware=[DefineMiddleware(hosts.HostCheck, allowed=hosts.for_server(runtime.settings.server)),
                    auth_pages.middleware(gate)],
        guards=[csrf.csrf_guard],
        before_send=[security.add_security_headers, i18n.vary_on_language],
        # Phones on Wi-Fi: gzip keeps the first load small. Never the SSE stream (it must flush each event).
        compression_config=CompressionConfig(backend="gzip", gzip_compress_level=6, exclude="^/events"),
        logging_config=None,  # server.logs owns logging: Litestar's default would install a second format
    )
