"""Server-rendered pages (Jinja + htmx). Actions call the same services as the API."""

from __future__ import annotations

from litestar import get
from litestar.response import Template

from server.runtime import Runtime
from server.web.views import printer_out


@get("/", include_in_schema=False)
async def dashboard(runtime: Runtime) -> Template:
    printers = [await printer_out(runtime, task) for task in runtime.printers.values()]
    return Template("dashboard.html", context={"printers": printers})


@get("/printers/{name:str}/card", include_in_schema=False)
async def printer_card(runtime: Runtime, name: str) -> Template:
    task = runtime.printers[name]
    return Template("partials/printer_card.html", context={"printer": await printer_out(runtime, task)})


handlers = [dashboard, printer_card]
