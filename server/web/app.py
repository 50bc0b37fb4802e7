"""Litestar app factory: pages, JSON API, live events, static files."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.config.compression import CompressionConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from server import __version__
from server.assets import static_dir, templates_dir
from server.runtime import Runtime
from server.web import api, events, ledger_pages, pages


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app(runtime: Runtime, *, manage_lifespan: bool = True) -> Litestar:
    """``manage_lifespan=False`` lets a caller that already started the runtime reuse it."""
    return Litestar(
        route_handlers=[
            healthz,
            api.router,
            events.stream,
            *pages.handlers,
            *ledger_pages.handlers,
            create_static_files_router(path="/static", directories=[static_dir()], include_in_schema=False),
        ],
        dependencies={"runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False)},
        lifespan=[runtime.lifespan] if manage_lifespan else [],
        template_config=TemplateConfig(directory=templates_dir(), engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(title="Layerwise", version=__version__, path="/api/v1/schema"),
        exception_handlers=api.exception_handlers,
        # Phones on Wi-Fi: gzip keeps the first load small. Never the SSE stream (it must flush each event).
        compression_config=CompressionConfig(backend="gzip", gzip_compress_level=6, exclude="^/events"),
        logging_config=None,  # server.logs owns logging: Litestar's default would install a second format
    )
