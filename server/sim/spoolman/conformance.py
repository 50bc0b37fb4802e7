"""Check the stand-in's recorded responses against the schemas of Spoolman's OpenAPI document.

Test-time code: it needs `jsonschema` (a test dependency, imported lazily) and the caller passes the
document in (tests copy it to `tests/fixtures/spoolman/openapi-0.26.1.json`). OpenAPI 3.1 schemas
are JSON Schema 2020-12.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from server.sim.spoolman.recorder import Exchange

_DOC_URI = "urn:spoolman:openapi"
_LIST_PATHS = {"/spool", "/filament", "/vendor"}
_MESSAGE = {"$ref": f"{_DOC_URI}#/components/schemas/Message"}


class OpenApiCheck:
    def __init__(self, document: dict[str, Any], *, prefix: str = "/api/v1") -> None:
        self._validator_class, self._registry = schema_registry(document)
        self._prefix = prefix
        # Literal paths first so "/spool/group" is not taken for "/spool/{spool_id}".
        templates = sorted(document["paths"], key=lambda t: (t.count("{"), t))
        self._routes = [(template, _template_regex(template)) for template in templates]
        self._paths: dict[str, dict[str, Any]] = document["paths"]

    def problems(self, exchanges: Iterable[Exchange]) -> list[str]:
        found: list[str] = []
        for exchange in exchanges:
            found.extend(self.check(exchange))
        return found

    def check(self, exchange: Exchange) -> list[str]:
        where = f"{exchange.method} {exchange.path} -> {exchange.status}"
        template = self._template_for(exchange.path)
        operation = self._paths.get(template or "", {}).get(exchange.method.lower())
        if exchange.status == 401 and isinstance(_get(exchange.body, "detail"), str):
            return []  # the stand-in playing an authenticating proxy in front of Spoolman (api_key)
        if operation is None:
            # No such route in Spoolman either: FastAPI answers {"detail": "Not Found"} (or 405).
            if exchange.status in (404, 405) and isinstance(_get(exchange.body, "detail"), str):
                return []
            return [f"{where}: not an operation of the OpenAPI document"]
        schema = self._schema_for(operation, exchange.status)
        if schema is None:
            return [f"{where}: status not documented for this operation"]
        problems = [
            f"{where}: {error.message} at {list(error.absolute_path)}" for error in self._errors(schema, exchange)
        ]
        if template in _LIST_PATHS and exchange.method == "GET" and exchange.status == 200:
            total = {k.lower(): v for k, v in exchange.headers.items()}.get("x-total-count")
            if total is None or not total.isdigit():
                problems.append(f"{where}: list without a numeric x-total-count header")
        return problems

    def _template_for(self, path: str) -> str | None:
        if not path.startswith(self._prefix):
            return None
        rest = path[len(self._prefix) :] or "/"
        for template, regex in self._routes:
            if regex.fullmatch(rest):
                return template
        return None

    @staticmethod
    def _schema_for(operation: dict[str, Any], status: int) -> dict[str, Any] | None:
        response = operation["responses"].get(str(status))
        if response is None:
            # Spoolman's own errors (e.g. a 404 for an unknown filament on POST /spool) share one handler
            # answering {"message": ...}, even where the operation does not list that status.
            return _MESSAGE if 400 <= status < 500 else None
        content = response.get("content", {}).get("application/json")
        return _absolute_refs(content["schema"]) if content else {}

    def _errors(self, schema: dict[str, Any], exchange: Exchange) -> list[Any]:
        validator = self._validator_class(schema, registry=self._registry)
        return list(validator.iter_errors(exchange.body))


def schema_registry(document: dict[str, Any]) -> tuple[Any, Any]:
    """The JSON Schema validator class and a registry holding ``document`` under the id the refs use."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource(_DOC_URI, Resource.from_contents(document, default_specification=DRAFT202012))
    return Draft202012Validator, registry


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts))


def _absolute_refs(schema: Any) -> Any:
    """Point the document's local `#/components/...` refs at the registered document."""
    if isinstance(schema, dict):
        return {
            key: f"{_DOC_URI}{value}" if key == "$ref" and value.startswith("#") else _absolute_refs(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute_refs(item) for item in schema]
    return schema


def _get(body: Any, key: str) -> Any:
    return body.get(key) if isinstance(body, dict) else None
