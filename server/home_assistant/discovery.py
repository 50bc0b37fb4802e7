"""Home Assistant MQTT discovery: which entities, under which topics, and the states they read (pure).

One device per printer (its job and its trays) and one for Layerwise itself (its health). Every entity
reads one JSON state topic per device with a ``value_template``, so a printer's values arrive together
and match each other. Keys follow HA's documented MQTT sensor and binary_sensor options
(https://www.home-assistant.io/integrations/sensor.mqtt/, .../binary_sensor.mqtt/,
.../mqtt/#mqtt-discovery).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from server import __version__

HEALTH_ID = "layerwise"
ORIGIN = {"name": "Layerwise", "sw_version": __version__}


@dataclass(frozen=True)
class Topics:
    discovery_prefix: str = "homeassistant"
    topic_prefix: str = "layerwise"

    @property
    def status(self) -> str:
        return f"{self.topic_prefix}/status"

    def state(self, device: str) -> str:
        return f"{self.topic_prefix}/{device}/state"

    def config(self, component: str, device: str, entity: str) -> str:
        return f"{self.discovery_prefix}/{component}/{device}/{entity}/config"

    def device_of(self, config_topic: str) -> str | None:
        """The device (node id) of a discovery topic made by ``config``."""
        parts = config_topic.removeprefix(f"{self.discovery_prefix}/").split("/")
        return parts[1] if len(parts) == 4 else None


def object_id(text: str) -> str:
    """A topic- and entity-id-safe slug: ``Workshop X1C`` -> ``workshop_x1c``."""
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "printer"


def device_id(printer: str) -> str:
    return f"layerwise_{object_id(printer)}"


@dataclass(frozen=True)
class Entity:
    component: str  # "sensor" or "binary_sensor"
    key: str  # the state's JSON key path, and the entity's part of unique_id
    name: str
    options: tuple[tuple[str, Any], ...] = ()


def _template(path: str) -> str:
    parts = "".join(f"[{p!r}]" if not p.isidentifier() else f".{p}" for p in path.split("."))
    return f"{{{{ value_json{parts} }}}}"


def _payload(entity: Entity, device: str, device_info: dict[str, Any], topics: Topics) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": entity.name,
        "unique_id": f"{device}_{object_id(entity.key)}",
        "state_topic": topics.state(device),
        "value_template": _template(entity.key),
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device_info,
        "origin": ORIGIN,
        **dict(entity.options),
    }
    if entity.component == "binary_sensor":
        payload |= {"payload_on": "ON", "payload_off": "OFF"}
    return payload


GRAMS = (("device_class", "weight"), ("unit_of_measurement", "g"), ("state_class", "measurement"),
         ("suggested_display_precision", 1))
JOB_ENTITIES = (
    Entity("binary_sensor", "online", "Connected",
           (("device_class", "connectivity"), ("entity_category", "diagnostic"))),
    Entity("sensor", "job.state", "Job state", (("icon", "mdi:printer-3d"),)),
    Entity("sensor", "job.name", "Job", (("icon", "mdi:file-outline"),)),
    Entity("sensor", "job.layer", "Layer", (("icon", "mdi:layers-outline"), ("state_class", "measurement"))),
    Entity("sensor", "job.total_layers", "Total layers", (("icon", "mdi:layers-triple-outline"),)),
    Entity("sensor", "job.grams", "Filament used", GRAMS),
    Entity("sensor", "job.runout_layer", "Runout layer", (("icon", "mdi:printer-3d-nozzle-alert-outline"),)),
    Entity("sensor", "job.runout_at", "Runout time", (("device_class", "timestamp"),)),
)
HEALTH_ENTITIES = (
    Entity("binary_sensor", "spoolman_reachable", "Spoolman reachable", (("device_class", "connectivity"),)),
    Entity("sensor", "bills_waiting", "Bills waiting", (("icon", "mdi:tray-full"), ("state_class", "measurement"))),
    Entity("binary_sensor", "needs_attention", "Needs attention", (("device_class", "problem"),)),
)


def tray_entities(label: str) -> tuple[Entity, ...]:
    key = f"trays.{label}"
    return (
        Entity("sensor", f"{key}.spool", f"Tray {label} spool", (("icon", "mdi:printer-3d-nozzle"),)),
        Entity("sensor", f"{key}.material", f"Tray {label} material", (("icon", "mdi:texture-box"),)),
        Entity("sensor", f"{key}.colour", f"Tray {label} colour", (("icon", "mdi:palette"),)),
        Entity("sensor", f"{key}.remaining_g", f"Tray {label} remaining", GRAMS),
        Entity("sensor", f"{key}.runout_layer", f"Tray {label} runout layer",
               (("icon", "mdi:printer-3d-nozzle-alert-outline"),)),
    )


def printer_discovery(printer: str, model: str | None, tray_labels: Iterable[str],
                      topics: Topics) -> dict[str, dict[str, Any]]:
    """Discovery topic -> payload for one printer's device."""
    device = device_id(printer)
    info = {"identifiers": [device], "name": printer, "manufacturer": "Bambu Lab", "model": model or "printer",
            "via_device": HEALTH_ID}
    entities = [*JOB_ENTITIES, *(e for label in tray_labels for e in tray_entities(label))]
    return {topics.config(e.component, device, object_id(e.key)): _payload(e, device, info, topics)
            for e in entities}


def health_discovery(topics: Topics) -> dict[str, dict[str, Any]]:
    info = {"identifiers": [HEALTH_ID], "name": "Layerwise", "manufacturer": "Layerwise",
            "model": "filament billing", "sw_version": __version__}
    return {topics.config(e.component, HEALTH_ID, object_id(e.key)): _payload(e, HEALTH_ID, info, topics)
            for e in HEALTH_ENTITIES}


def removed(announced: Iterable[str], devices: Iterable[str], topics: Topics) -> list[str]:
    """Discovery topics announced before for a device that is gone (a printer removed from the
    configuration): each gets an empty retained payload. A configured printer keeps all of its entities,
    also trays it does not report right now (offline, or before its first report after a restart)."""
    keep = set(devices)
    return sorted(topic for topic in set(announced) if topics.device_of(topic) not in keep)


# --- states -------------------------------------------------------------------------------------------


def on_off(value: bool) -> str:
    return "ON" if value else "OFF"


@dataclass(frozen=True)
class TrayState:
    label: str
    tray: int
    spool: str | None
    material: str | None
    colour: str | None
    remaining_g: float | None


def printer_state(*, online: bool, job_state: str | None, job_name: str | None, layer: int | None,
                  total_layers: int | None, grams: float | None, trays: Sequence[TrayState],
                  forecast: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """A printer's state JSON: the job and its trays, with the forecast's runout (earliest tray first)."""
    by_tray = {int(t["tray"]): t for t in forecast if t.get("status") == "runs_out"}
    first = min(by_tray.values(), key=lambda t: t.get("runout_layer") or 0, default=None)
    runout_at = None
    if first is not None and first.get("runout_in_s") is not None:
        runout_at = (now + timedelta(seconds=float(first["runout_in_s"]))).isoformat(timespec="seconds")
    return {
        "online": on_off(online),
        "job": {"state": job_state, "name": job_name, "layer": layer, "total_layers": total_layers,
                "grams": None if grams is None else round(grams, 2),
                "runout_layer": first.get("runout_layer") if first else None, "runout_at": runout_at},
        "trays": {t.label: {"spool": t.spool, "material": t.material, "colour": t.colour,
                            "remaining_g": None if t.remaining_g is None else round(t.remaining_g, 1),
                            "runout_layer": by_tray[t.tray].get("runout_layer") if t.tray in by_tray else None}
                  for t in trays},
    }


def health_state(*, spoolman_reachable: bool, bills_waiting: int, attention_groups: int) -> dict[str, Any]:
    return {"spoolman_reachable": on_off(spoolman_reachable), "bills_waiting": bills_waiting,
            "needs_attention": on_off(attention_groups > 0)}
