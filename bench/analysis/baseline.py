"""Baseline for the benchmark: the straightforward parser most tools use. Every line is split into a
command and a dictionary of word letters to numbers, then dispatched. Same rules as the engine
(server/analysis/gcode.py), so its totals double as a cross-check."""

from __future__ import annotations

from collections.abc import Iterable

UNLOAD = {255, 65535, 65279}


def parse_line(line: str) -> tuple[str, dict[str, float]]:
    """``"G1 X1.5 E.2 ; c"`` -> ``("G1", {"X": 1.5, "E": 0.2})``."""
    code = line.split(";", 1)[0].split("*", 1)[0].strip()
    tokens = code.split()
    if tokens and tokens[0][:1] == "N" and tokens[0][1:].isdigit():
        tokens = tokens[1:]
    if not tokens:
        return "", {}
    words: dict[str, float] = {}
    for token in tokens[1:]:
        try:
            words[token[0].upper()] = float(token[1:])
        except (ValueError, IndexError):
            continue
    return tokens[0].upper(), words


def baseline_usage(chunks: Iterable[bytes]) -> tuple[int, dict[int, float]]:
    """(layer count, mm per filament) the slow way."""
    totals: dict[int, float] = {}
    active, first, layers = -1, None, 0
    absolute, e_pos, skip = False, 0.0, False
    pending = b""

    def add(amount: float) -> None:
        if not skip:
            totals[active] = totals.get(active, 0.0) + amount

    def lines() -> Iterable[str]:
        nonlocal pending
        for chunk in chunks:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", "replace")
        yield pending.decode("utf-8", "replace")

    for raw in lines():
        stripped = raw.strip()
        if stripped.startswith(";VG"):
            cmd, words = parse_line(stripped[2:])
            if cmd in ("G0", "G1", "G2", "G3") and words.get("E"):
                add(words["E"])
            continue
        cmd, words = parse_line(stripped)
        if cmd in ("G0", "G1", "G2", "G3", "G00", "G01", "G02", "G03") and "E" in words:
            amount = words["E"] - e_pos if absolute else words["E"]
            e_pos = words["E"] if absolute else e_pos + amount
            add(amount)
        elif cmd == "G92":
            e_pos = words.get("E", e_pos) if words else 0.0
        elif cmd in ("M82", "M83"):
            absolute = cmd == "M82"
        elif cmd == "M73" and "L" in words:
            layers = max(layers, int(words["L"]))
        elif cmd.startswith("T") and cmd[1:].isdigit():
            n = int(cmd[1:])
            if n <= 254 and n not in UNLOAD:
                first = n if first is None else first
                active = n
        elif cmd == "M620.11" and words.get("E"):
            add(words["E"])
        elif cmd == "M628":
            skip = words.get("S") == 1
        elif cmd == "M629":
            skip = False
    if -1 in totals:
        early = totals.pop(-1)
        target = first if first is not None else 0
        totals[target] = totals.get(target, 0.0) + early
    return layers, dict(sorted(totals.items()))
