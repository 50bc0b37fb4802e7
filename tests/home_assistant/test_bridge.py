"""The bridge against a real mosquitto: retained discovery, availability, states equal to the dashboard's
values, removal of a printer that left the configuration, and reconnecting after the broker restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import SecretStr

from server.billing import attention, backlog, statements
from server.config import PrinterConfig, ServerConfig, Settings, SpoolmanConfig
from server.config.reach import HomeAssistantConfig
from server.home_assistant.bridge import STATE_FILE, Bridge, lifespans
from server.retry import Backoff
from server.runtime import Runtime
from server.sim.demo_print import demo_3mf, demo_gcode, grams
from server.sim.printer import VirtualPrinter
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore, seed_demo
from server.web.views import all_slots, printer_out
from tests.home_assistant.ha_schema import SCHEMAS
from tests.home_assistant.mosquitto import Mosquitto, mosquitto, retained
from tests.waiting import until

PRINTER = "Workshop P1S"
DEVICE = "layerwise_workshop_p1s"
STATE = f"layerwise/{DEVICE}/state"
LAYERS = 10
GONE = "homeassistant/sensor/layerwise_old_printer/job_state/config"


@contextlib.asynccontextmanager
async def layerwise(tmp_path: Path, broker: Mosquitto) -> AsyncIterator[tuple[Runtime, VirtualPrinter, Bridge]]:
    store = SpoolmanStore()
    seed_demo(store)
    # Tray 0's spool holds half of what filament 0 needs: the real forecast says it runs out.
    store.update_spool(3, {"remaining_weight": round(grams(demo_gcode(LAYERS)[1][0], "PLA") / 2, 2)})
    async with SpoolmanStandin(store) as spoolman, VirtualPrinter(
        serial="01P00A000000042", access_code="s3cr3t42", cert_dir=tmp_path / "certs", model="P1S",
    ) as printer:
        settings = Settings(
            server=ServerConfig(data_dir=tmp_path / "data"),
            spoolman=SpoolmanConfig(url=spoolman.url, timeout=5),
            home_assistant=HomeAssistantConfig(mqtt_url=f"mqtt://127.0.0.1:{broker.port}"),
            printers=(PrinterConfig(name=PRINTER, host=printer.host, serial=printer.serial,
                                    access_code=SecretStr("s3cr3t42"), mqtt_port=printer.mqtt_port,
                                    ftps_port=printer.ftps_port, ca_file=printer.ca_cert_path),),
            seed_mappings={PRINTER: {0: 3}},
        )
        runtime = Runtime.build(settings)
        # A printer configured before, announced then, and gone from the configuration now.
        (tmp_path / "data" / STATE_FILE).write_text(json.dumps({"discovery_topics": [GONE]}))
        async with broker.client() as client:
            await client.publish(GONE, b'{"name": "old"}', qos=1, retain=True)
        async with runtime.lifespan():
            bridge = Bridge(runtime, settings.home_assistant, refresh_s=3600, backoff=Backoff(0.05, 0.2))
            task = asyncio.create_task(bridge.run())
            try:
                yield runtime, printer, bridge
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def test_discovery_states_removal_and_availability(tmp_path: Path) -> None:
    async with mosquitto(tmp_path / "broker") as broker:
        async with layerwise(tmp_path, broker) as (runtime, printer, _bridge):
            task = runtime.printers[PRINTER]
            await until(lambda: asyncio.sleep(0, task.online and task.state.get("ams")))
            printer.add_file("/cache/demo.gcode.3mf", demo_3mf(layers=LAYERS))
            await printer.start_print("/cache/demo.gcode.3mf", ams_mapping=[0, 1, 2, 3])
            await until(lambda: asyncio.sleep(0, task.jobs.analysis is not None))
            await printer.advance(3)
            await until(lambda: asyncio.sleep(0, task.jobs.job is not None and (task.jobs.job.last_layer or 0) >= 3))
            job_id = task.jobs.job_id

            async def settled() -> tuple[dict[str, bytes], Any, float] | None:
                """The retained topics once the state shows the dashboard's current values (bills reach
                Spoolman a moment after each layer; every change is published again)."""
                found = await retained(broker, "homeassistant/#", "layerwise/#")
                state = json.loads(found.get(STATE) or b"{}")
                card = await printer_out(runtime, task)
                grams = (await asyncio.to_thread(statements.job_detail, runtime.db, job_id)).grams
                expected = {slot.label: round(slot.spool.remaining_weight, 1) if slot.spool else None
                            for slot in all_slots(card)}
                current = {label: tray["remaining_g"] for label, tray in state.get("trays", {}).items()}
                health = json.loads(found.get("layerwise/layerwise/state") or b"{}")
                latest = runtime.forecast.of(PRINTER, job_id) if runtime.forecast else None
                warnings = latest.forecast.warnings if latest else ()
                runout = next((t.runout_layer for t in warnings if t.tray == 0), None)
                groups = await asyncio.to_thread(attention.attention_groups_count, runtime.db)
                waiting = sum(s.count for s in (await asyncio.to_thread(backlog.backlog, runtime.db)).spools)
                same = (health == {"spoolman_reachable": "ON", "bills_waiting": waiting,
                                   "needs_attention": "ON" if groups else "OFF"}
                        and runout is not None and state.get("job", {}).get("runout_layer") == runout
                        and state["job"]["layer"] == card.job.layer
                        and state["job"]["grams"] == round(grams, 2) and current == expected)
                return (found, card, grams, runout) if same else None

            found, card, grams, runout = await until(settled)

        # Discovery: retained, each valid for its kind; the removed printer's topic is gone.
        configs = {topic: json.loads(payload) for topic, payload in found.items() if topic.endswith("/config")}
        for topic, payload in configs.items():
            jsonschema.validate(payload, SCHEMAS[topic.split("/")[1]])
        assert GONE not in found
        assert {p["device"]["identifiers"][0] for p in configs.values()} == {DEVICE, "layerwise"}
        slots = all_slots(card)
        assert {p["name"] for p in configs.values()} >= {f"Tray {s.label} remaining" for s in slots}
        # States: the dashboard's values.
        state = json.loads(found[STATE])
        assert state["job"]["state"] == card.job.state and state["job"]["layer"] == card.job.layer
        assert state["job"]["grams"] == round(grams, 2) and grams > 0
        assert state["job"]["runout_layer"] == runout and 1 <= runout <= LAYERS
        for slot in slots:
            tray = state["trays"][slot.label]
            assert tray["spool"] == (slot.spool.name if slot.spool else None)
            assert tray["material"] == ((slot.spool.material if slot.spool else None) or slot.material)
        assert state["trays"][slots[0].label]["runout_layer"] == runout
        # Trays 1-3 print without a spool assigned: their bills wait for a person.
        assert json.loads(found["layerwise/layerwise/state"])["needs_attention"] == "ON"
        assert found["layerwise/status"] == b"online"
        # Stopped: every entity unavailable (the retained status).
        assert (await retained(broker, "layerwise/status"))["layerwise/status"] == b"offline"
        assert json.loads((tmp_path / "data" / STATE_FILE).read_text())["discovery_topics"] == sorted(configs)


async def test_reconnects_after_the_broker_restarts(tmp_path: Path) -> None:
    async with mosquitto(tmp_path / "broker") as broker, layerwise(tmp_path, broker) as (_, _, bridge):
        await until(lambda: asyncio.sleep(0, bridge.connected.is_set()))
        await broker.stop()
        await until(lambda: asyncio.sleep(0, not bridge.connected.is_set()))
        await broker.start()  # same port, nothing retained (persistence off)
        await until(lambda: asyncio.sleep(0, bridge.connected.is_set()))
        found = await retained(broker, "homeassistant/#", "layerwise/status")
    assert found["layerwise/status"] == b"online"
    assert any(topic.startswith(f"homeassistant/sensor/{DEVICE}/") for topic in found)


async def test_the_web_app_starts_the_bridge_when_configured(tmp_path: Path) -> None:
    assert lifespans(Runtime.build(Settings(server=ServerConfig(data_dir=tmp_path / "none")))) == []
    async with mosquitto(tmp_path / "broker") as broker:
        config = HomeAssistantConfig(mqtt_url=f"mqtt://127.0.0.1:{broker.port}")
        runtime = Runtime.build(Settings(server=ServerConfig(data_dir=tmp_path / "data"), home_assistant=config))
        (bridge,) = lifespans(runtime)
        async with runtime.lifespan(), bridge():
            status = await until(lambda: retained(broker, "layerwise/status"))
            assert status == {"layerwise/status": b"online"}
        assert await retained(broker, "layerwise/status") == {"layerwise/status": b"offline"}
