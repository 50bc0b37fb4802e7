"""Check the requests Layerwise's Spoolman client sent against Spoolman's OpenAPI document.

The other half of the contract (`conformance.OpenApiCheck` checks the stand-in's answers): each
request must be an operation of the document (path and method), its path and query parameters must be
ones the operation declares with values its schemas accept, and its JSON body must match the
operation's request body schema with no key the schema does not name. Spoolman ignores unknown keys,
so a misspelt one (`use_lenght`) would bill nothing and say nothing; here it is a problem.

Test-time code, like `conformance`: it needs `jsonschema`, and the caller passes the document in.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import Any

from server.sim.spoolman.conformance import _absolute_refs, schema_registry
from server.sim.spoolman.recorder import BAD_JSON, NO_BODY, Exchange

CLIENT_AGENT = "layerwise"  # what server.spoolman.client sends as its User-Agent


class RequestCheck:
    def __init__(self, document: dict[str, Any], *, prefix: str = "/api/v1") -> None:
        self._validator_class, self._registry = schema_registry(_closed(document))
        self._prefix = prefix
        templates = sorted(document["paths"], key=lambda t: (t.count("{"), t))
        self._routes = [(template, _named_regex(template)) for template in templates]
        self._paths: dict[str, dict[str, Any]] = document["paths"]

    @staticmethod
    def from_client(exchange: Exchange) -> bool:
        return exchange.agent.split("/")[0] == CLIENT_AGENT

    def problems(self, exchanges: Iterable[Exchange]) -> list[str]:
        """The problems of every request Layerwise's client sent (other callers' requests, and the
        client's inside `RECORDER.deliberately_invalid()`, are skipped: tests send those on purpose)."""
        found: list[str] = []
        for exchange in exchanges:
            if self.from_client(exchange) and not exchange.deliberate:
                found.extend(self.check(exchange))
        return found

    def check(self, exchange: Exchange) -> list[str]:
        where = f"{exchange.method} {exchange.path}"
        match = self._match(exchange.path)
        if match is None:
            return [f"{where}: no such path in Spoolman's OpenAPI document"]
        template, path_values = match
        operation = self._paths[template].get(exchange.method.lower())
        if operation is None:
            return [f"{where}: {exchange.method} is not an operation of {template}"]
        problems: list[str] = []
        declared = {(p["in"], p["name"]): p for p in operation.get("parameters", [])}
        for name, value in path_values.items():
            problems += self._value_problems(where, "path", name, value, declared.get(("path", name)))
        for name, value in exchange.query:
            parameter = declared.get(("query", name))
            if parameter is None:
                problems.append(f"{where}: unknown query parameter {name!r}")
            else:
                problems += self._value_problems(where, "query", name, value, parameter)
        sent = {name for name, _ in exchange.query}
        for (place, name), parameter in declared.items():
            if place == "query" and parameter.get("required") and name not in sent:
                problems.append(f"{where}: required query parameter {name!r} missing")
        problems += self._body_problems(where, operation.get("requestBody"), exchange.request_body)
        return problems

    def _match(self, path: str) -> tuple[str, dict[str, str]] | None:
        if not path.startswith(self._prefix):
            return None
        rest = path[len(self._prefix) :] or "/"
        for template, regex in self._routes:
            if found := regex.fullmatch(rest):
                return template, found.groupdict()
        return None

    def _value_problems(self, where: str, place: str, name: str, value: str,
                        parameter: dict[str, Any] | None) -> list[str]:
        if parameter is None:
            return [f"{where}: {place} parameter {name!r} not declared"]
        schema = _absolute_refs(parameter.get("schema", {}))
        validator = self._validator_class(schema, registry=self._registry)
        if any(validator.is_valid(candidate) for candidate in _readings(value)):
            return []
        return [f"{where}: {place} parameter {name}={value!r} does not match its schema {parameter.get('schema')}"]

    def _body_problems(self, where: str, request_body: dict[str, Any] | None, body: Any) -> list[str]:
        if request_body is None:
            return [] if body == NO_BODY else [f"{where}: a body where the operation takes none"]
        if body == NO_BODY:
            return [f"{where}: the operation needs a body"] if request_body.get("required") else []
        if body == BAD_JSON:
            return [f"{where}: the body is not JSON"]
        content = request_body.get("content", {}).get("application/json")
        if content is None:
            return [f"{where}: a JSON body where the operation takes another type"]
        validator = self._validator_class(_absolute_refs(content["schema"]), registry=self._registry)
        errors = validator.iter_errors(body)
        return [f"{where}: body {error.message} at {list(error.absolute_path)}" for error in errors]


def _named_regex(template: str) -> re.Pattern[str]:
    """Like conformance's, with each path parameter captured by its name."""
    parts = re.split(r"\{([^}]+)\}", template)
    pattern = "".join(f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part) for index, part in enumerate(parts))
    return re.compile(pattern)


def _readings(value: str) -> list[Any]:
    """A query or path value is text on the wire; FastAPI reads it as its schema's type."""
    readings: list[Any] = [value]
    if value in ("true", "false"):
        readings.append(value == "true")
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            readings.append(kind(value))
    return readings


def _closed(schema: Any) -> Any:
    """The document with every object schema that lists its properties closed to other keys
    (`additionalProperties: false` where it says nothing), so an unknown key is a problem."""
    if isinstance(schema, dict):
        out = {key: _closed(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out and out.get("type", "object") == "object":
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema
