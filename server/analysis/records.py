"""``NamedTuple`` for the analysis's records without importing typing (~2 ms of a ~0.1 s `layerwise analyze`,
whose other imports do not load it). Type checkers see typing's own; at run time the class statement makes
the same ``collections.namedtuple`` typing would (fields from the annotations, their defaults, the class's
methods and docstring), so the records behave alike."""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    _NOT_COPIED = frozenset({"__module__", "__name__", "__annotations__"})

    class _Meta(type):
        def __new__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, object]) -> type:
            fields = list(namespace.get("__annotations__", {}))
            defaults = [namespace[f] for f in fields if f in namespace]
            if any(f not in namespace for f in fields[len(fields) - len(defaults) :]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            record = namedtuple(name, fields, defaults=defaults, module=str(namespace["__module__"]))
            for key, value in namespace.items():
                if key not in _NOT_COPIED and key not in fields:
                    setattr(record, key, value)
            return record

    NamedTuple = type.__new__(_Meta, "NamedTuple", (), {})
