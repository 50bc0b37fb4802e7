"""A tiny stand-in with the shape of `server.analysis.PrintAnalysis`, for unit tests
(imported by the tracking tests; the one test here checks the stand-in itself)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FakeFilament:
    index: int
    mm: float = 0.0
    g: float = 0.0
    density: float = 1.24
    diameter: float = 1.75


@dataclass(frozen=True)
class FakeToolChange:
    layer: int
    filament: int


@dataclass
class FakeAnalysis:
    """`layers[n]` = mm per filament in layer n (0 = prelude); `marks[n]` = the
    `M73 P` marks inside layer n as (percent, mm per filament printed by then)."""

    layers: dict[int, dict[int, float]]
    marks: dict[int, list[tuple[int, dict[int, float]]]] = field(default_factory=dict)
    tool_changes: tuple[FakeToolChange, ...] = ()
    filaments: dict[int, FakeFilament] = field(default_factory=dict)

    def __post_init__(self) -> None:
        used = {f for usage in self.layers.values() for f in usage}
        for f in used:
            self.filaments.setdefault(f, FakeFilament(f))

    @property
    def layer_count(self) -> int:
        return max(self.layers)

    def prelude(self) -> dict[int, float]:
        return dict(self.layers.get(0, {}))

    def layer(self, n: int) -> dict[int, float]:
        if not 1 <= n <= self.layer_count:
            raise IndexError(n)  # as the real analysis: 1-based, the prelude has its own call
        return dict(self.layers.get(n, {}))

    def used_through(self, n: int) -> dict[int, float]:
        if n < 0:
            raise IndexError(n)
        total: dict[int, float] = {}
        for layer in range(0, n + 1):
            for f, mm in self.layers.get(layer, {}).items():
                total[f] = total.get(f, 0.0) + mm
        return total

    def layer_at_percent(self, n: int, mc_percent: float) -> dict[int, float]:
        done: dict[int, float] = {}
        for percent, usage in self.marks.get(n, []):
            if percent <= mc_percent:
                done = dict(usage)
        return done


def test_fake_analysis_shape() -> None:
    fake = FakeAnalysis({0: {0: 5.0}, 1: {0: 2.0, 1: 1.0}}, marks={1: [(40, {0: 1.0}), (60, {0: 2.0, 1: 0.5})]})
    assert fake.layer_count == 1
    assert fake.used_through(1) == {0: 7.0, 1: 1.0}
    assert fake.layer_at_percent(1, 50) == {0: 1.0}
    assert fake.layer_at_percent(1, 39) == {}
