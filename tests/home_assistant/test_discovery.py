"""Discovery payloads against HA's documented options, and the templates against the states (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
import jsonschema
import pytest

from server.home_assistant import discovery
from server.home_assistant.discovery import Topics, TrayState
from tests.home_assistant.ha_schema import SCHEMAS

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
FORECAST = [{"tray": 2, "spool_id": 12, "status": "runs_out", "runout_layer": 143, "total_layers": 200,
             "runout_in_s": 7800.0, "needed_g": 35.0, "remaining_g": 20.0, "filament": "PLA Black"},
            {"tray": 0, "spool_id": 3, "status": "enough", "runout_layer": None, "total_layers": 200,
             "runout_in_s": None, "needed_g": 5.0, "remaining_g": 800.0, "filament": "PLA White"}]
TRAYS = [TrayState("A1", 0, "PLA White", "PLA", "white", 800.0), TrayState("A3", 2, "PLA Black", "PLA", "black", 20.0),
         TrayState("External L", 254, None, None, None, None)]


def configs() -> dict[str, dict[str, Any]]:
    topics = Topics()
    return {**discovery.printer_discovery("Workshop X1C", "X1C", [t.label for t in TRAYS], topics),
            **discovery.health_discovery(topics)}


def state() -> dict[str, Any]:
    return discovery.printer_state(online=True, job_state="RUNNING", job_name="benchy", layer=120,
                                   total_layers=200, grams=12.345, trays=TRAYS, forecast=FORECAST, now=NOW)


@pytest.mark.parametrize("topic", sorted(configs()))
def test_each_payload_validates_against_its_kind(topic: str) -> None:
    prefix, component, node, _entity, last = topic.split("/")
    assert (prefix, last) == ("homeassistant", "config") and node.startswith("layerwise")
    jsonschema.validate(configs()[topic], SCHEMAS[component])


def test_the_schema_refuses_what_ha_would() -> None:
    payload = next(iter(configs().values()))
    for broken in ({**payload, "stat_topic": "x"}, {k: v for k, v in payload.items() if k != "state_topic"},
                   {**payload, "device": {"name": "no identifiers"}}, {**payload, "device_class": "filament"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMAS["sensor"])


def test_one_device_per_printer_and_unique_ids() -> None:
    payloads = configs().values()
    assert len({p["unique_id"] for p in payloads}) == len(payloads)
    devices = {p["device"]["identifiers"][0] for p in payloads}
    assert devices == {"layerwise_workshop_x1c", "layerwise"}
    assert all(p["availability_topic"] == "layerwise/status" for p in payloads)
    names = {p["name"] for p in payloads}
    assert {"Layer", "Filament used", "Runout layer", "Runout time", "Tray A3 remaining", "Tray External L colour",
            "Spoolman reachable", "Bills waiting", "Needs attention"} <= names


def test_every_template_reads_a_value_from_its_state() -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    states = {"layerwise/layerwise_workshop_x1c/state": state(),
              "layerwise/layerwise/state": discovery.health_state(spoolman_reachable=True, bills_waiting=3,
                                                                  attention_groups=0)}
    values = {p["name"]: env.from_string(p["value_template"]).render(value_json=states[p["state_topic"]])
              for p in configs().values()}
    assert values["Layer"] == "120" and values["Filament used"] == "12.35"
    assert values["Runout layer"] == "143" and values["Tray A3 runout layer"] == "143"
    assert values["Runout time"] == "2026-12-05T11:10:00+00:00"
    assert values["Tray A1 runout layer"] == "None"  # HA's MQTT sensor reads "None" as unknown
    assert (values["Tray A3 spool"], values["Tray A3 colour"], values["Tray A3 remaining"]) == ("PLA Black", "black",
                                                                                                "20.0")
    assert (values["Spoolman reachable"], values["Bills waiting"], values["Needs attention"]) == ("ON", "3", "OFF")


def test_only_removed_printers_topics_are_cleared() -> None:
    topics = Topics("ha/discovery", "lw")
    old = set(discovery.printer_discovery("Old", None, ["A1"], topics))
    x1c = set(discovery.printer_discovery("Workshop X1C", None, ["A1", "B1"], topics))
    devices = ["layerwise", "layerwise_workshop_x1c"]
    assert discovery.removed(old | x1c, devices, topics) == sorted(old)
    assert discovery.removed(x1c, devices, topics) == []  # tray B1 not reported now: kept
