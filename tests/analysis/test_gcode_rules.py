"""One test per gcode rule (server/analysis/gcode.py), each on a hand-written snippet."""

from __future__ import annotations

import textwrap

import pytest

from server.analysis import analyze_gcode_stream
from server.analysis.gcode import GcodeUsage, ToolChange


def scan(text: str, **kwargs: int) -> GcodeUsage:
    return analyze_gcode_stream([textwrap.dedent(text).encode()], **kwargs)


def rounded(usage: dict[int, float]) -> dict[int, float]:
    return {k: round(v, 6) for k, v in usage.items()}


def test_indented_commands_count_and_load() -> None:
    usage = scan(
        """
        M620 S2A   ; switch material if AMS exist
          T2
            G1 E5 F300
        \tG1 X1 E1.5
        M73 L1
          G1 X2 E2
        """
    )
    assert usage.layers[0] == {2: 6.5}
    assert usage.layers[1] == {2: 2.0}
    assert usage.tool_changes == (ToolChange(0, 2),)


def test_comments_blank_lines_line_numbers_and_checksums_are_ignored() -> None:
    usage = scan(
        """
        ; G1 E100 in a comment
        ;G1 E100
        G1 X1 Y1 ; E100 after a comment

        N10 G1 X2 E1.25*57
        N11 G1 E-.25 *12
        G1 X3 E2 ; wipe E9
        """
    )
    assert rounded(usage.layers[0]) == {0: 3.0}


def test_unknown_commands_and_malformed_numbers_are_not_fatal() -> None:
    usage = scan(
        """
        M9999 E55 Q1
        G130 O0 X100 Y-0.2 Z0.6 F2.49449 L40 E12 D4
        M985.1 U0 E2
        M73 E50
        FOO BAR
        G1 X1 E1..2
        G1 X1 E-
        G1 X1 E3
        """
    )
    assert usage.layers[0] == {0: 3.0}


def test_layer_markers_and_prelude() -> None:
    usage = scan(
        """
        G1 E10
        M73 L1
        G1 X1 E1
        M73 L2
        G1 X1 E2
        G1 X2 E3
        """
    )
    assert usage.layer_count == 2
    assert usage.layers[0] == {0: 10.0}
    assert usage.layers[1] == {0: 1.0}
    assert usage.layers[2] == {0: 5.0}


def test_progress_marks_are_recorded_per_layer() -> None:
    usage = scan(
        """
        M73 L1
        M73 P10 R5
        G1 X1 E1
        M73 P11 R4
        G1 X1 E2
        """
    )
    assert usage.marks[1] == ((10, {}), (11, {0: 1.0}))


def test_extrusion_before_first_load_goes_to_the_first_filament_loaded() -> None:
    usage = scan(
        """
        G1 E7
        M620 S3A
        T3
        G1 E1
        M73 L1
        M620 S1A
        T1
        G1 E2
        """
    )
    assert usage.layers[0] == {3: 8.0}
    assert usage.layers[1] == {1: 2.0}


def test_without_any_load_the_default_filament_gets_everything() -> None:
    assert scan("G1 E4\n", default_filament=2).layers[0] == {2: 4.0}


def test_moves_inside_change_block_before_t_belong_to_outgoing_filament() -> None:
    usage = scan(
        """
        T0
        M73 L1
        G1 X1 E5
        M620 S1A
        G1 E-2 F1800
        G1 X70 Y265
        T1
        G1 E30 ; flush with the new filament
        M621 S1A
        """
    )
    assert usage.layers[1] == {0: 3.0, 1: 30.0}
    assert usage.tool_changes == (ToolChange(0, 0), ToolChange(1, 1))


@pytest.mark.parametrize("code", ["255", "65535", "65279"])
def test_unload_codes_are_not_filaments(code: str) -> None:
    usage = scan(
        f"""
        T0
        G1 E5
        M620 S{code}
        T{code}
        G1 E-1
        M621 S{code}
        """
    )
    assert usage.layers[0] == {0: 4.0}
    assert usage.tool_changes == (ToolChange(0, 0),)


def test_start_gcode_t_codes_are_not_filament_changes() -> None:
    usage = scan(
        """
        M620 S1A
        T1
        T1000
        G1 E2
        T1100
        G1 E3
        """
    )
    assert usage.layers[0] == {1: 5.0}
    assert usage.tool_changes == (ToolChange(0, 1),)


def test_reloading_the_same_filament_is_not_a_change() -> None:
    usage = scan("  M620 S0A\n  T0\n  M620 S0A\n  T0\nG1 E1\n")
    assert usage.tool_changes == (ToolChange(0, 0),)


def test_relative_extrusion_with_retractions() -> None:
    usage = scan(
        """
        M83
        G1 X1 E2
        G1 E-0.8 F1800
        G1 E0.8
        G2 X2 Y2 I1 J0 E1.5
        G3 X3 Y3 I1 J0 E.5
        G0 X4 E0
        """
    )
    assert rounded(usage.layers[0]) == {0: 4.0}


def test_absolute_extrusion_with_g92_resets() -> None:
    usage = scan(
        """
        M82
        G92 E0
        G1 X1 E5
        G1 E4.2
        G1 E5
        G1 X2 E7
        G92 E0
        G1 X3 E1
        M83
        G1 E2
        """
    )
    assert rounded(usage.layers[0]) == {0: 10.0}


def test_switch_from_relative_to_absolute_keeps_the_position() -> None:
    usage = scan("M83\nG1 E3\nM82\nG1 E5\n")
    assert usage.layers[0] == {0: 5.0}


def test_cut_retraction_and_orca_reprime_count_once() -> None:
    # OrcaSlicer / A1 template: cut retraction of the outgoing filament, firmware re-prime of the
    # incoming one, and the same re-prime repeated as a real move between M628 S1 and M629 S1.
    usage = scan(
        """
        T0
        G1 E100
        M620 S1A
        M620.11 S1 I0 E-18 F523.843
        T1
        M620.11 S1 I0 E18 F523.843
        M628 S1
        G92 E0
        G1 E18 F523.843
        M400
        M629 S1
        G92 E0
        M83
        G1 E23.7
        """
    )
    assert rounded(usage.layers[0]) == {0: 82.0, 1: 41.7}


def test_m628_s0_block_holds_real_flush() -> None:
    usage = scan("T0\nM628 S0\nG1 E6\nM629\nG1 E1\n")
    assert usage.layers[0] == {0: 7.0}


def test_virtual_flush_lines_count_as_the_firmware_performs_them() -> None:
    # P2S / H2D templates: the firmware flushes, the gcode only says how much in ;VG1 comments.
    usage = scan(
        """
        T0
        G1 E10
        M620 S1A
        M620.10 A0 F299.339 L61.5 H0.4 T240 P220 S1
        M620.10 A1 F299.339 L61.5 H0.4 T240 P220 S1
        M620.11 P1 L0 I0 E-18 F200
        T1
        ;deretract
        ;VG1 E4 F200
        ;VG1 E4 F100
        ; VFLUSH_START
        ;VG1 E41.5 F300
        ;VG1 E20 F300
        SYNC T5
        ; VFLUSH_END
        ;VM109 S220
        M621 S1A
        """
    )
    assert rounded(usage.layers[0]) == {0: -8.0, 1: 69.5}


def test_a1_flush_length_in_m620_10_is_not_counted_twice() -> None:
    usage = scan(
        """
        T0
        M620 S1A
        M620.10 A0 F299.339
        T1
        M620.10 A1 F299.339 L40 H0.4 T240
        M628 S0
        G1 E23.7 F299
        G1 E16.3 F299
        M629
        M621 S1A
        """
    )
    assert rounded(usage.layers[0]) == {1: 40.0}


def test_dual_nozzle_loads_are_keyed_by_slicer_filament() -> None:
    usage = scan(
        """
        M620 S4A
        T4 H1
        G1 E3
        M73 L1
        M620 S0A
        T0 H0
        G1 E2
        M620 S4A
        T4 H1
        G1 E1
        """
    )
    assert usage.layers[0] == {4: 3.0}
    assert usage.layers[1] == {0: 2.0, 4: 1.0}
    assert [t.filament for t in usage.tool_changes] == [4, 0, 4]


def test_header_and_footer_values_are_collected() -> None:
    usage = scan(
        """
        ; HEADER_BLOCK_START
        ; total layer number: 2
        ; total filament length [mm] : 10.5,20.25
        ; filament_density: 1.24,1.26
        ; filament: 1,4
        ; HEADER_BLOCK_END
        ; filament_type = PLA;PETG
        ; filament used [mm] = 10.50, 20.25
        """
    )
    assert usage.header["total filament length [mm]"] == "10.5,20.25"
    assert usage.header["filament"] == "1,4"
    assert usage.header["filament_type"] == "PLA;PETG"
    assert usage.header["filament used [mm]"] == "10.50, 20.25"


def test_crlf_line_endings() -> None:
    usage = analyze_gcode_stream([b"T1\r\nG1 X1 E2\r\nM73 L1\r\n  G1 E3\r\n"])
    assert usage.layers == ({1: 2.0}, {1: 3.0})
