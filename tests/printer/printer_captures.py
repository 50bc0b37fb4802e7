"""Loading the real MQTT captures copied into tests/fixtures/mqtt-captures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mqtt-captures"


def load_capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text("utf-8"))
