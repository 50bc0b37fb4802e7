"""The stand-in's HTTP face: the Spoolman 0.26 endpoints Layerwise calls, built with Litestar.

Answers use Spoolman's shapes: items as in its `Spool`/`Filament`/`Vendor` schemas, `x-total-count`
on lists, `{"message": ...}` for 400/404, FastAPI's `{"detail": [...]}` for 422.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Litestar, Request, Response, delete, get, patch, post, put
from litestar.exceptions import HTTPException
from pydantic import BaseModel, ValidationError

from server.sim.spoolman.bodies import (
    ExtraFieldParameters,
    FilamentParameters,
    SpoolParameters,
    SpoolUpdateParameters,
    SpoolUseParameters,
    VendorParameters,
    validation_detail,
)
from server.sim.spoolman.query import QueryError
from server.sim.spoolman.recorder import BAD_JSON, NO_BODY, RECORDER, Exchange, ExchangeRecorder
from server.sim.spoolman.refusals import Refusals
from server.sim.spoolman.store import ENTITY_TYPES, SpoolmanStore, StoreNotFound, StoreRejected

API = "/api/v1"
M = TypeVar("M", bound=BaseModel)


class _Answer(Exception):
    """Raised inside a handler to answer early with a Spoolman-shaped error."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _reply(
    recorder: ExchangeRecorder,
    request: Request,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    sent: bytes | None = None,
) -> Response[Any]:
    headers = headers or {}
    recorder.record(Exchange(request.method, request.url.path, status, body, dict(headers),
                             query=tuple(request.query_params.multi_items()), request_body=_decoded(sent),
                             agent=request.headers.get("user-agent", "")))
    return Response(content=body, status_code=status, headers=headers, media_type="application/json")


def _decoded(sent: bytes | None) -> Any:
    if not sent:
        return NO_BODY
    try:
        return json.loads(sent)
    except ValueError:
        return BAD_JSON


def _int_path(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        msg = "Input should be a valid integer, unable to parse string as an integer"
        raise _Answer(422, {"detail": [{"loc": ["path", name], "msg": msg, "type": "int_parsing"}]}) from None


def _entity_type(raw: str) -> str:
    if raw not in ENTITY_TYPES:
        msg = "Input should be 'vendor', 'filament' or 'spool'"
        raise _Answer(422, {"detail": [{"loc": ["path", "entity_type"], "msg": msg, "type": "enum"}]})
    return raw


async def _body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        raise _Answer(
            422, {"detail": [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]}
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _Answer(422, {"detail": validation_detail(error)}) from None


def _query(request: Request) -> dict[str, str]:
    return {key: request.query_params[key] for key in request.query_params}


def create_standin_app(store: SpoolmanStore, recorder: ExchangeRecorder = RECORDER,
                       api_key: str | None = None, refusals: Refusals | None = None) -> Litestar:
    """``api_key``: answer 401 unless a request says ``Authorization: Bearer <api_key>``, as Spoolman
    behind an authenticating reverse proxy does (Spoolman itself has no login). ``refusals``: requests
    to answer with a scripted 4xx, applying nothing (``refusals.py``)."""
    Handler = Callable[..., Awaitable[tuple[int, Any] | tuple[int, Any, dict[str, str]]]]

    def answering(handler: Handler) -> Callable[..., Awaitable[Response[Any]]]:
        """Turn a handler's (status, body[, headers]) or a store error into a recorded response."""

        async def run(request: Request) -> Response[Any]:
            sent = await request.body()  # read once here, so the record holds the request as sent
            if api_key is not None and not hmac.compare_digest(
                    request.headers.get("authorization", "").encode(), f"Bearer {api_key}".encode()):
                return _reply(recorder, request, 401, {"detail": "Not authenticated"}, sent=sent)
            refusal = refusals.take(request.method, request.url.path.removeprefix(API)) if refusals else None
            if refusal is not None:
                return _reply(recorder, request, refusal.status, refusal.body(), sent=sent)
            try:
                status, body, *rest = await handler(request, **request.path_params)
            except _Answer as answer:
                return _reply(recorder, request, answer.status, answer.body, sent=sent)
            except StoreNotFound as error:
                return _reply(recorder, request, 404, {"message": str(error)}, sent=sent)
            except StoreRejected as error:
                return _reply(recorder, request, 400, {"message": str(error)}, sent=sent)
            except QueryError as error:
                detail = [{"loc": ["query", error.param], "msg": str(error), "type": "value_error"}]
                return _reply(recorder, request, 422, {"detail": detail}, sent=sent)
            return _reply(recorder, request, status, body, rest[0] if rest else None, sent=sent)

        return run

    def listing(result: tuple[list[Any], int]) -> tuple[int, Any, dict[str, str]]:
        items, total = result
        return 200, items, {"x-total-count": str(total)}

    async def info(request: Request) -> tuple[int, Any]:
        return 200, store.info()

    async def health(request: Request) -> tuple[int, Any]:
        return 200, {"status": "healthy"}

    async def list_vendors(request: Request) -> tuple[int, Any, dict[str, str]]:
        return listing(store.list_vendors(_query(request)))

    async def create_vendor(request: Request) -> tuple[int, Any]:
        body = await _body(request, VendorParameters)
        return 200, store.create_vendor(body.model_dump(exclude_unset=True))

    async def get_vendor(request: Request, vendor_id: str) -> tuple[int, Any]:
        return 200, store.get_vendor(_int_path("vendor_id", vendor_id))

    async def list_filaments(request: Request) -> tuple[int, Any, dict[str, str]]:
        return listing(store.list_filaments(_query(request)))

    async def create_filament(request: Request) -> tuple[int, Any]:
        body = await _body(request, FilamentParameters)
        return 200, store.create_filament(body.model_dump(exclude_unset=True))

    async def get_filament(request: Request, filament_id: str) -> tuple[int, Any]:
        return 200, store.get_filament(_int_path("filament_id", filament_id))

    async def list_spools(request: Request) -> tuple[int, Any, dict[str, str]]:
        return listing(store.list_spools(_query(request)))

    async def create_spool(request: Request) -> tuple[int, Any]:
        body = await _body(request, SpoolParameters)
        return 200, store.create_spool(body.model_dump(exclude_unset=True))

    async def get_spool(request: Request, spool_id: str) -> tuple[int, Any]:
        return 200, store.get_spool(_int_path("spool_id", spool_id))

    async def update_spool(request: Request, spool_id: str) -> tuple[int, Any]:
        spool = _int_path("spool_id", spool_id)
        body = await _body(request, SpoolUpdateParameters)
        return 200, store.update_spool(spool, body.model_dump(exclude_unset=True))

    async def delete_spool(request: Request, spool_id: str) -> tuple[int, Any]:
        spool = _int_path("spool_id", spool_id)
        store.delete_spool(spool)
        return 200, {"message": "Success!"}

    async def use_spool(request: Request, spool_id: str) -> tuple[int, Any]:
        spool = _int_path("spool_id", spool_id)
        body = await _body(request, SpoolUseParameters)
        return 200, store.use_spool(spool, use_weight=body.use_weight, use_length=body.use_length)

    async def list_fields(request: Request, entity_type: str) -> tuple[int, Any]:
        return 200, store.list_fields(_entity_type(entity_type))

    async def add_field(request: Request, entity_type: str, key: str) -> tuple[int, Any]:
        kind = _entity_type(entity_type)
        if not (1 <= len(key) <= 64) or not all(c.islower() or c.isdigit() or c == "_" for c in key):
            msg = "String should match pattern '^[a-z0-9_]+$'"
            raise _Answer(422, {"detail": [{"loc": ["path", "key"], "msg": msg, "type": "string_pattern_mismatch"}]})
        body = await _body(request, ExtraFieldParameters)
        return 200, store.add_or_update_field(kind, key, body.model_dump(exclude_unset=True))

    async def delete_field(request: Request, entity_type: str, key: str) -> tuple[int, Any]:
        return 200, store.delete_field(_entity_type(entity_type), key)

    routes = [
        (get, "/info", info),
        (get, "/health", health),
        (get, "/vendor", list_vendors),
        (post, "/vendor", create_vendor),
        (get, "/vendor/{vendor_id:str}", get_vendor),
        (get, "/filament", list_filaments),
        (post, "/filament", create_filament),
        (get, "/filament/{filament_id:str}", get_filament),
        (get, "/spool", list_spools),
        (post, "/spool", create_spool),
        (get, "/spool/{spool_id:str}", get_spool),
        (patch, "/spool/{spool_id:str}", update_spool),
        (delete, "/spool/{spool_id:str}", delete_spool),
        (put, "/spool/{spool_id:str}/use", use_spool),
        (get, "/field/{entity_type:str}", list_fields),
        (post, "/field/{entity_type:str}/{key:str}", add_field),
        (delete, "/field/{entity_type:str}/{key:str}", delete_field),
    ]
    route_handlers = [
        method(API + path, name=f"{method.__name__}:{path}", status_code=200)(answering(fn))
        for method, path, fn in routes
    ]

    def http_error(request: Request, exc: HTTPException) -> Response[Any]:
        if exc.status_code >= 500:
            # The request's body never arrived whole (its client went away while sending: a timeout, a
            # lossy link): Spoolman would never have seen a request. Answered to no one, recorded as nothing.
            return Response(content={"detail": exc.detail}, status_code=exc.status_code)
        # Unknown routes and methods: FastAPI's plain `{"detail": "..."}` answers.
        return _reply(recorder, request, exc.status_code, {"detail": exc.detail})

    return Litestar(route_handlers=route_handlers, exception_handlers={HTTPException: http_error}, debug=False,
                    logging_config=None)  # the host process owns logging (one format)
