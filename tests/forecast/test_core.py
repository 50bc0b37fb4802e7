"""The runout forecast against hand-computed cases from a real print file.

p1s-2colour-bs2.05.gcode.3mf: 100 layers, slicer filaments 0 (PLA #FFFFFF) and 3 (PLA #161616). Every
spool here is PLA at 1.24 g/cm³, 1.75 mm: 1 g is 1000 / (1.24 · π · 0.875²) = 335.28 mm. The cumulative
mm below are the analysis's per-layer figures summed by hand (prelude = layer 0):

- filament 3, prelude..30: 1612.53 mm, ..31: 1715.60 mm. 5 g = 1676.42 mm: runs out during layer 31.
- filament 0, prelude..21: 3300.37 mm, ..22: 3596.82 mm. 10 g = 3352.84 mm: runs out during layer 22.
- filament 0, prelude..43: 6637.66 mm, ..44: 6934.11 mm. 20 g = 6705.67 mm: runs out during layer 44.
- filament 0, layers 11..33: 3344.23 mm, 11..34: 3640.68 mm. 10 g from layer 11 on: layer 34.
- filament 0 needs 7864.24 mm = 23.455 g in all; 18.157 g from layer 11 on. Filament 3: 8.675 g.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.analysis import PrintAnalysis, analyze_file
from server.forecast.core import Pace, SpoolFacts, TrayFacts, backups_of, forecast, match_loaded, suggestions

FILE = Path(__file__).resolve().parents[1] / "fixtures" / "print-files" / "p1s-2colour-bs2.05.gcode.3mf"
MAPPING = {0: 0, 3: 1}  # filament 0 in tray 0, filament 3 in tray 1
WHITE, BLACK = "FFFFFFFF", "161616FF"


@pytest.fixture(scope="module")
def analysis() -> PrintAnalysis:
    return analyze_file(FILE)


def spool(spool_id: int, remaining: float | None, *, filament_id: int = 1, colour: str = "ffffff") -> SpoolFacts:
    return SpoolFacts(spool_id, remaining, 1.24, 1.75, filament_id=filament_id, material="PLA", color_hex=colour)


def trays(white: SpoolFacts | None, black: SpoolFacts | None, **more: TrayFacts) -> dict[int, TrayFacts]:
    out = {0: TrayFacts(0, white, "PLA", WHITE), 1: TrayFacts(1, black, "PLA", BLACK)}
    out.update({int(k[1:]): v for k, v in more.items()})
    return out


def test_a_spool_that_runs_out_names_its_layer(analysis: PrintAnalysis) -> None:
    result = forecast(analysis, -1, MAPPING, trays(spool(10, 500.0), spool(11, 5.0, colour="161616")), None,
                      auto_refill=True)
    white, black = result.trays
    assert (white.tray, white.status, white.runout_layer, white.needed_g, white.remaining_g) == \
        (0, "enough", None, 23.46, 500.0)
    assert (black.tray, black.spool_id, black.status, black.runout_layer, black.total_layers) == \
        (1, 11, "runs_out", 31, 100)
    assert black.needed_g == 8.68 and black.remaining_g == 5.0
    assert black.filament == "PLA #161616"
    assert result.warnings == (black,)
    assert set(black.event()) == {"tray", "spool_id", "status", "runout_layer", "total_layers", "runout_in_s",
                                  "needed_g", "remaining_g", "filament"}


def test_only_layers_not_billed_yet_count(analysis: PrintAnalysis) -> None:
    pace = Pace(remaining_s=3600.0, layer=11, total=100)  # 90 layers left: 40 s a layer
    result = forecast(analysis, 10, MAPPING, trays(spool(10, 10.0), spool(11, 50.0)), pace, auto_refill=True)
    white = result.trays[0]
    assert (white.status, white.runout_layer, white.needed_g) == ("runs_out", 34, 18.16)
    assert white.runout_in_s == pytest.approx((34 - 11) * 40.0)


def test_a_backup_tray_continues_the_filament(analysis: PrintAnalysis) -> None:
    backup = TrayFacts(2, spool(12, 10.0), "pla", "ffffffff")  # same material and colour, case aside
    alone = forecast(analysis, -1, MAPPING, trays(spool(10, 10.0), spool(11, 50.0)), None, auto_refill=True)
    assert alone.trays[0].runout_layer == 22
    both = forecast(analysis, -1, MAPPING, trays(spool(10, 10.0), spool(11, 50.0), t2=backup), None,
                    auto_refill=True)
    white = both.trays[0]
    assert (white.status, white.runout_layer, white.remaining_g, white.backups) == ("runs_out", 44, 20.0, (2,))
    # Auto refill off, or not reported: the printer stops at the first spool's end.
    for setting in (False, None):
        off = forecast(analysis, -1, MAPPING, trays(spool(10, 10.0), spool(11, 50.0), t2=backup), None,
                       auto_refill=setting)
        assert off.trays[0].runout_layer == 22 and off.trays[0].backups == ()


def test_a_backup_that_outlasts_the_print_makes_it_enough(analysis: PrintAnalysis) -> None:
    backup = TrayFacts(3, spool(13, 100.0), "PLA", WHITE)
    result = forecast(analysis, -1, MAPPING, trays(spool(10, 10.0), spool(11, 50.0), t3=backup), None,
                      auto_refill=True)
    assert (result.trays[0].status, result.trays[0].runout_layer) == ("enough", None)


def test_unknown_weight_is_never_guessed(analysis: PrintAnalysis) -> None:
    result = forecast(analysis, -1, MAPPING, trays(spool(10, None), None), None, auto_refill=True)
    white, black = result.trays
    assert (white.status, white.runout_layer, white.remaining_g, white.spool_id) == ("unknown", None, None, 10)
    assert white.needed_g == 23.46  # what is needed is known all the same
    assert (black.status, black.spool_id, black.remaining_g) == ("unknown", None, None)
    assert black.needed_g == 8.68  # from the file's own density
    # A backup of unknown weight takes over where the known spool ends: unknown, not "runs out".
    backup = TrayFacts(2, spool(12, None), "PLA", WHITE)
    chained = forecast(analysis, -1, MAPPING, trays(spool(10, 10.0), spool(11, 50.0), t2=backup), None,
                       auto_refill=True)
    assert (chained.trays[0].status, chained.trays[0].runout_layer) == ("unknown", None)


def test_backups_exclude_other_colours_the_jobs_own_trays_and_the_external_spool() -> None:
    white = TrayFacts(0, None, "PLA", WHITE)
    others = {
        0: white,
        1: TrayFacts(1, None, "PLA", WHITE),  # used by the job itself
        2: TrayFacts(2, None, "PETG", WHITE),
        3: TrayFacts(3, None, "PLA", BLACK),
        4: TrayFacts(4, None, "PLA", WHITE, present=False),
        5: TrayFacts(5, None, "PLA", "FFFFFF00"),
        254: TrayFacts(254, None, "PLA", WHITE, external=True),
    }
    assert backups_of(white, others, used={0, 1}) == (5,)


def test_suggestions_same_filament_first_then_nearest_weight() -> None:
    current = spool(10, 5.0, filament_id=7)
    want = TrayFacts(0, current, "PLA", WHITE)
    candidates = [
        spool(20, 200.0, filament_id=7),
        spool(21, 40.0, filament_id=7),
        spool(22, 41.0, filament_id=8),  # same material and colour, other filament
        spool(23, 20.0, filament_id=7),  # not enough
        spool(24, 500.0, filament_id=9, colour="000000"),  # other colour
        spool(25, None, filament_id=7),  # unknown weight
        spool(26, 36.0, filament_id=7),  # already in a tray
    ]
    found = suggestions(35.0, current, want, candidates, skip={26})
    assert [s.spool_id for s in found] == [21, 20, 22]


def test_as_loaded_now_maps_by_material_and_colour(analysis: PrintAnalysis) -> None:
    loaded = {0: TrayFacts(0, None, "PETG", WHITE), 1: TrayFacts(1, None, "PLA", BLACK),
              2: TrayFacts(2, None, "PLA", WHITE), 3: TrayFacts(3, None, "PLA", WHITE)}
    assert match_loaded(analysis, loaded) == {0: 2, 3: 1}
    assert match_loaded(analysis, {0: TrayFacts(0, None, "PLA", "00FF00FF")}) == {}
