"""Plain colour names for hex colours, shared by the pages, notifications and Home Assistant. Pure.

The names are marked for translation (extracted with the web app's messages; pages show them with the
``translate`` filter); notifications and Home Assistant use them as they are, in English.
"""

from __future__ import annotations


def N_(message: str) -> str:  # gettext's marker, as in server.web.i18n (which sits above this module)
    return message


# A few plain colour names, so a spool reads "white" and not "#ffffff"; the nearest one wins (marked for
# translation: pages show them with the ``translate`` filter).
_COLOUR_NAMES = {
    N_("black"): (0, 0, 0), N_("grey"): (128, 128, 128), N_("silver"): (192, 192, 192), N_("white"): (255, 255, 255),
    N_("red"): (220, 30, 30), N_("dark red"): (128, 0, 0), N_("orange"): (255, 140, 0), N_("yellow"): (250, 220, 0),
    N_("beige"): (225, 205, 165), N_("brown"): (120, 70, 20), N_("green"): (30, 160, 50), N_("dark green"): (0, 90, 30),
    N_("lime"): (170, 230, 40), N_("teal"): (0, 128, 128), N_("cyan"): (0, 200, 220), N_("light blue"): (130, 190, 240),
    N_("blue"): (30, 80, 220), N_("navy"): (0, 0, 110), N_("purple"): (120, 40, 170), N_("violet"): (180, 120, 230),
    N_("pink"): (245, 150, 190), N_("magenta"): (220, 0, 170),
}


def colour_name(colour: str | None) -> str | None:
    """The nearest plain name of ``#rrggbb`` / ``rrggbb[aa]``, or None when it is not a colour."""
    text = (colour or "").lstrip("#")[:6]
    if len(text) != 6:
        return None
    try:
        rgb = tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return None
    return min(_COLOUR_NAMES, key=lambda name: sum((a - b) ** 2 for a, b in zip(_COLOUR_NAMES[name], rgb, strict=True)))


def filament_words(text: str) -> str:
    """"PLA #161616" -> "PLA Black": the slicer's colour by name."""
    words = []
    for part in text.split(", "):
        kind, _, colour = part.partition(" ")
        name = colour_name(colour) if colour else None
        words.append(f"{kind} {name.capitalize()}" if name else part)
    return ", ".join(words)
