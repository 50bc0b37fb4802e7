"""Problems with a configuration: one line each, naming the key the way the user wrote it.

``<key>: <what is wrong>; expected <what would be right>``. The key is ``printers[1].access_code``
for the TOML file, ``LAYERWISE_PRINTER_ACCESS_CODE`` for the environment, ``--port`` for the command
line: each raw value carries the name it was given under (``Raw``), and ``validate`` translates
pydantic's errors, located by field, back to those names.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from server.config.values import shown


class ConfigError(Exception):
    """Invalid configuration: ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Raw:
    """One model's raw values with the name the user gave each one (for messages)."""

    label: str  # "server", "printers[1]", "LAYERWISE_PRINTER_*"
    values: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)  # names already given a problem line

    def set(self, name: str, value: Any, key: str) -> None:
        self.values[name] = value
        self.keys[name] = key

    def key(self, name: str) -> str:
        return self.keys.get(name, f"{self.label}.{name}")


class Problems(list[str]):
    def add(self, key: str, fault: str, expected: str) -> None:
        self.append(f"{key}: {fault}; expected {expected}")


def unknown_key(problems: Problems, key: str, name: str, allowed: list[str], noun: str = "key") -> None:
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    problems.add(key, f"unknown {noun}{hint}", f"one of {', '.join(allowed)}")


def allowed_keys(model: type[BaseModel], extra: tuple[str, ...] = ()) -> list[str]:
    return [*model.model_fields, *extra]


def validate(model: type[BaseModel], raw: Raw, problems: Problems) -> Any:
    try:
        return model.model_validate(raw.values)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            if name in raw.reported:
                continue
            expected = model.model_fields[name].description if name in model.model_fields else "a valid value"
            if error["type"] == "layerwise":
                fault = error["msg"]
            elif error["type"] == "missing":
                fault = "is missing"
            elif name in ("access_code", "api_key", "urls", "password"):
                fault = "is not valid"  # never echo a secret
            else:
                fault = f"is {shown(error['input'])}"
            problems.add(raw.key(name), fault, expected or "a valid value")
        return None
