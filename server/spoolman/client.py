"""Async client for Spoolman's REST API (0.26), on httpx.

Every call has a timeout. Idempotent calls (reads, the per-key merge PATCH of `extra`, field
registration) are retried with capped exponential back-off and jitter when Spoolman is unreachable
or answers 5xx. `PUT /spool/{id}/use` adds to `used_weight` on every call, so it is never retried
here: its failure says whether the request could have reached Spoolman (`request_sent`), and the
caller (the outbox) decides what to do.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from server.logs import register_secret
from server.retry import EqualJitter
from server.spoolman.errors import (
    SpoolmanError,
    SpoolmanNotFound,
    SpoolmanRejected,
    SpoolmanUnreachable,
    answer_error,
    describe,
    error_kind,
)
from server.spoolman.models import ExtraField, Filament, Page, Spool, Vendor
from server.spoolman.search import spool_matches
from server.spoolman.transport import spoolman_transport

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
USER_AGENT = "layerwise"
_SCAN_PAGE = 100  # page size when the client must read every spool (search, extra lookup)
MAX_CONNECTIONS = 8  # to Spoolman at once (see the client's limits)

M = TypeVar("M", bound=BaseModel)
Params = Mapping[str, str | int | float | bool | None]


class SpoolmanClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int = 3,
        backoff_base: float = 0.25,
        backoff_cap: float = 5.0,
        api_key: SecretStr | None = None,
    ) -> None:
        """``api_key``: sent as ``Authorization: Bearer`` (Spoolman behind an authenticating proxy)."""
        root = base_url.rstrip("/")
        if not root.endswith(API_PREFIX):
            root += API_PREFIX
        # Messages, logs and repr name Spoolman without any user:password the URL may carry.
        self.base_url = str(httpx.URL(root).copy_with(username=None, password=None))
        self.retries = retries
        self.on_error: Callable[[str], None] | None = None  # told each failed request's kind (the metrics)
        self._wait = EqualJitter(backoff_base, backoff_cap, random.Random())
        # The user agent names Layerwise (the suite checks every request that says so against Spoolman's
        # OpenAPI document; a proxy's log can tell it apart too).
        headers = {"accept": "application/json", "user-agent": USER_AGENT}
        if api_key is not None:
            register_secret(api_key.get_secret_value())  # a library's debug log must not show it either
            headers["authorization"] = f"Bearer {api_key.get_secret_value()}"
        # Spoolman (uvicorn) drops idle connections after 5 s; reusing one just as it closes would
        # turn a `use` into an unknown outcome, so let ours expire well before that.
        # A few connections, not httpx's 100: its pool looks at every connection it holds on each
        # request and answer (bench.farm: 1.55 ms of loop CPU per GET with 16 callers on 16 connections,
        # 1.09 ms on 8). The outbox and the spool cache each send at most 8 at once; a request waiting
        # for a connection counts against the timeout like connecting does, which the outbox's settle
        # grace allows for.
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS,
                              keepalive_expiry=2.0)
        self._http = httpx.AsyncClient(
            base_url=root,
            timeout=httpx.Timeout(timeout),
            transport=transport if transport is not None else spoolman_transport(limits),
            headers=headers,
            limits=limits,
        )

    def __repr__(self) -> str:
        return f"SpoolmanClient({self.base_url!r})"

    async def __aenter__(self) -> SpoolmanClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ----- server ---------------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        response = await self._call("GET", "/info", idempotent=True)
        return dict(response.json())

    async def health(self) -> bool:
        """True when Spoolman answers its health check; False when it is unreachable or unwell."""
        try:
            response = await self._call("GET", "/health", idempotent=False)
        except (SpoolmanUnreachable, SpoolmanRejected, SpoolmanNotFound):
            return False
        return bool(response.json().get("status") == "healthy")

    # ----- spools ---------------------------------------------------------------------------------

    async def list_spools(
        self,
        *,
        search: str | None = None,
        filament_id: int | None = None,
        allow_archived: bool = False,
        limit: int = 50,
        offset: int = 0,
        sort: str | None = None,
    ) -> Page[Spool]:
        """A page of spools. `search` is free text over id, filament name, material, vendor, colour,
        location, lot and comment, filtered client-side over all spools (see `server.spoolman.search`)."""
        params: dict[str, Any] = {"allow_archived": allow_archived, "sort": sort}
        if filament_id is not None:
            params["filament.id"] = filament_id
        if search is None or not search.strip():
            return await self._page("/spool", Spool, params, limit=limit, offset=offset)
        matched = [s for s in await self._all("/spool", Spool, params) if spool_matches(s, search)]
        return Page[Spool](items=matched[offset : offset + limit], total=len(matched))

    async def get_spool(self, spool_id: int) -> Spool:
        return await self._item("GET", f"/spool/{spool_id}", Spool, idempotent=True)

    async def use_spool(self, spool_id: int, *, length_mm: float | None = None, weight_g: float | None = None) -> Spool:
        """Bill filament to a spool. Never retried: a repeat would bill twice."""
        if (length_mm is None) == (weight_g is None):
            raise ValueError("give exactly one of length_mm and weight_g")
        body = {"use_length": length_mm} if length_mm is not None else {"use_weight": weight_g}
        return await self._item("PUT", f"/spool/{spool_id}/use", Spool, json_body=body, idempotent=False)

    async def patch_spool_extra(self, spool_id: int, extra: Mapping[str, Any]) -> Spool:
        """Set extra fields (each value JSON-encoded, as Spoolman stores them; None clears a field).

        Since 0.26 the PATCH merges `extra` per key, so other fields keep their values and a repeat
        gives the same result: safe to retry."""
        encoded = {key: None if value is None else json.dumps(value) for key, value in extra.items()}
        return await self._item("PATCH", f"/spool/{spool_id}", Spool, json_body={"extra": encoded}, idempotent=True)

    async def find_spools_by_extra(self, key: str, value: str, *, allow_archived: bool = False) -> list[Spool]:
        """Spools whose extra field `key` holds `value` (compared case-insensitively, as RFID tag UUIDs
        are hex). Spoolman cannot filter by extra fields, so this reads all spools."""
        wanted = value.strip().lower()
        found = []
        for spool in await self._all("/spool", Spool, {"allow_archived": allow_archived}):
            stored = spool.extra_value(key)
            if isinstance(stored, str) and stored.strip().lower() == wanted:
                found.append(spool)
        return found

    async def create_spool(
        self,
        filament_id: int,
        *,
        initial_weight: float | None = None,
        spool_weight: float | None = None,
        remaining_weight: float | None = None,
        used_weight: float | None = None,
        location: str | None = None,
        lot_nr: str | None = None,
        comment: str | None = None,
        price: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Spool:
        """Add a spool (not retried: a repeat would add a second spool). `extra` values are JSON-encoded."""
        body = _given(
            filament_id=filament_id,
            initial_weight=initial_weight,
            spool_weight=spool_weight,
            remaining_weight=remaining_weight,
            used_weight=used_weight,
            location=location,
            lot_nr=lot_nr,
            comment=comment,
            price=price,
            extra=_encode_extra(extra),
        )
        return await self._item("POST", "/spool", Spool, json_body=body, idempotent=False)

    # ----- filaments and vendors ------------------------------------------------------------------

    async def list_filaments(
        self,
        *,
        name: str | None = None,
        material: str | None = None,
        vendor_name: str | None = None,
        vendor_id: int | None = None,
        limit: int = 50,
        offset: int = 0,
        sort: str | None = None,
    ) -> Page[Filament]:
        params = {"name": name, "material": material, "vendor.name": vendor_name, "vendor.id": vendor_id, "sort": sort}
        return await self._page("/filament", Filament, params, limit=limit, offset=offset)

    async def get_filament(self, filament_id: int) -> Filament:
        return await self._item("GET", f"/filament/{filament_id}", Filament, idempotent=True)

    async def create_filament(
        self,
        *,
        density: float,
        diameter: float,
        name: str | None = None,
        vendor_id: int | None = None,
        material: str | None = None,
        weight: float | None = None,
        spool_weight: float | None = None,
        color_hex: str | None = None,
        multi_color_hexes: str | None = None,
        multi_color_direction: str | None = None,
        article_number: str | None = None,
        comment: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Filament:
        """Add a filament type (not retried: a repeat would add a duplicate)."""
        body = _given(
            density=density,
            diameter=diameter,
            name=name,
            vendor_id=vendor_id,
            material=material,
            weight=weight,
            spool_weight=spool_weight,
            color_hex=color_hex,
            multi_color_hexes=multi_color_hexes,
            multi_color_direction=multi_color_direction,
            article_number=article_number,
            comment=comment,
            extra=_encode_extra(extra),
        )
        return await self._item("POST", "/filament", Filament, json_body=body, idempotent=False)

    async def list_vendors(
        self, *, name: str | None = None, limit: int = 50, offset: int = 0, sort: str | None = None
    ) -> Page[Vendor]:
        return await self._page("/vendor", Vendor, {"name": name, "sort": sort}, limit=limit, offset=offset)

    async def get_vendor(self, vendor_id: int) -> Vendor:
        return await self._item("GET", f"/vendor/{vendor_id}", Vendor, idempotent=True)

    async def create_vendor(
        self,
        name: str,
        *,
        empty_spool_weight: float | None = None,
        comment: str | None = None,
        external_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Vendor:
        """Add a vendor (not retried: a repeat would add a duplicate)."""
        body = _given(
            name=name,
            empty_spool_weight=empty_spool_weight,
            comment=comment,
            external_id=external_id,
            extra=_encode_extra(extra),
        )
        return await self._item("POST", "/vendor", Vendor, json_body=body, idempotent=False)

    # ----- extra fields ---------------------------------------------------------------------------

    async def list_spool_fields(self) -> list[ExtraField]:
        response = await self._call("GET", "/field/spool", idempotent=True)
        return [ExtraField.model_validate(item) for item in response.json()]

    async def ensure_spool_field(self, key: str, name: str, field_type: str = "text") -> None:
        """Register the spool extra field `key` unless Spoolman already has it.

        Registering an existing key with the same type only rewrites its definition, so the POST
        is safe to retry."""
        if any(field.key == key for field in await self.list_spool_fields()):
            return
        body = {"name": name, "field_type": field_type}
        await self._call("POST", f"/field/spool/{key}", json_body=body, idempotent=True)

    # ----- plumbing -------------------------------------------------------------------------------

    async def _item(self, method: str, path: str, model: type[M], *, json_body: Any = None, idempotent: bool) -> M:
        response = await self._call(method, path, json_body=json_body, idempotent=idempotent)
        return model.model_validate(response.json())

    async def _page(self, path: str, model: type[M], params: Params, *, limit: int, offset: int) -> Page[M]:
        query = {**params, "limit": limit, "offset": offset}
        response = await self._call("GET", path, params=query, idempotent=True)
        items = [model.model_validate(item) for item in response.json()]
        header = response.headers.get("x-total-count")
        total = int(header) if header is not None and header.isdigit() else offset + len(items)
        return Page[model](items=items, total=total)  # type: ignore[valid-type]

    async def _all(self, path: str, model: type[M], params: Params) -> list[M]:
        found: list[M] = []
        while True:
            batch = await self._page(path, model, params, limit=_SCAN_PAGE, offset=len(found))
            found.extend(batch.items)
            if not batch.items or len(found) >= batch.total:
                return found

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        idempotent: bool,
    ) -> httpx.Response:
        if not idempotent:  # a `use` is sent once: the outbox settles an unknown outcome, never repeats it
            return await self._once(method, path, params, json_body)

        def note(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            log.warning("Spoolman %s %s failed (%s); retry %d in %.2fs", method, path, error, state.attempt_number,
                        delay)

        retrying = AsyncRetrying(stop=stop_after_attempt(self.retries + 1), wait=self._wait,
                                 retry=retry_if_exception_type(SpoolmanUnreachable), before_sleep=note, reraise=True)
        return await retrying(self._once, method, path, params, json_body)

    async def _once(self, method: str, path: str, params: Params | None, json_body: Any) -> httpx.Response:
        try:
            return await self._request(method, path, params, json_body)
        except SpoolmanError as error:
            if self.on_error is not None:
                self.on_error(error_kind(error))
            raise

    async def _request(self, method: str, path: str, params: Params | None, json_body: Any) -> httpx.Response:
        query = {key: _query_value(value) for key, value in (params or {}).items() if value is not None}
        where = f"Spoolman at {self.base_url}"
        try:
            response = await self._http.request(method, path, params=query, json=json_body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as error:
            # Nothing was written to Spoolman: no connection was ever made for this request.
            raise SpoolmanUnreachable(f"{where} is unreachable: {describe(error)}", request_sent=False) from error
        except httpx.TransportError as error:
            # Read/write timeouts, dropped connections, protocol errors: the request may have arrived.
            raise SpoolmanUnreachable(f"{where} gave no answer: {describe(error)}", request_sent=True) from error
        refusal = answer_error(response, where, path)
        if refusal is not None:
            raise refusal
        return response


def _given(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _encode_extra(extra: Mapping[str, Any] | None) -> dict[str, str] | None:
    return None if extra is None else {key: json.dumps(value) for key, value in extra.items()}


def _query_value(value: str | int | float | bool) -> str | int | float:
    return ("true" if value else "false") if isinstance(value, bool) else value


