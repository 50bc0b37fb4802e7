"""server.analysis.records.NamedTuple makes, without typing's import, the records typing.NamedTuple makes."""

from __future__ import annotations

import pickle
import typing

import pytest

from server.analysis.records import NamedTuple


class Point(NamedTuple):
    """A point."""

    x: int
    y: int = 0
    tags: tuple[str, ...] = ()

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    def moved(self, dx: int) -> Point:
        return self._replace(x=self.x + dx)


class TypingPoint(typing.NamedTuple):
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


def test_fields_defaults_methods_and_docstring_as_typing_makes_them() -> None:
    p = Point(3, -4)
    assert p == (3, -4, ()) == TypingPoint(3, -4)
    assert Point._fields == TypingPoint._fields
    assert Point._field_defaults == TypingPoint._field_defaults
    assert p.norm1 == 7 and p.moved(1) == Point(4, -4)
    assert p._asdict() == {"x": 3, "y": -4, "tags": ()}
    assert repr(p) == "Point(x=3, y=-4, tags=())"
    assert Point.__doc__ == "A point." and Point.__module__ == __name__
    assert pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(AttributeError):
        p.x = 1  # type: ignore[misc]


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError):

        class Bad(NamedTuple):
            a: int = 0
            b: int
