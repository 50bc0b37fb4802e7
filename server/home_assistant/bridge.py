"""The Home Assistant bridge: the dashboard's values, published to the user's MQTT broker.

Connects with a last will (``<topic_prefix>/status`` = ``offline``, retained), announces itself
``online``, publishes retained discovery payloads, clears those of printers no longer configured (what was
announced is kept in ``DATA_DIR/home_assistant.json``), then publishes the states on every bus event that
may change them (coalesced) and every ``refresh_s``. A lost broker is retried forever with the project's
back-off. Values come from ``server.web.views.printer_out``, the function the dashboard renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from server.billing import attention, backlog, statements
from server.config.reach import HomeAssistantConfig
from server.events import Event
from server.home_assistant import discovery
from server.home_assistant.discovery import Topics, TrayState
from server.jobs.tracker import JobTracker
from server.printer.task import PrinterTask
from server.retry import Backoff
from server.runtime import Runtime
from server.supervise import stop_tasks, supervise
from server.web.views import all_slots, colour_name, printer_out

log = logging.getLogger(__name__)

STATE_FILE = "home_assistant.json"
REFRESH_S = 30.0


class Bridge:
    def __init__(self, runtime: Runtime, config: HomeAssistantConfig, *, refresh_s: float = REFRESH_S,
                 backoff: Backoff | None = None) -> None:
        self.runtime = runtime
        self.config = config
        self.topics = Topics(config.discovery_prefix, config.topic_prefix)
        self.refresh_s = refresh_s
        self.backoff = backoff or Backoff(first=1.0, cap=60.0)
        self.forecasts: dict[str, dict[str, Any]] = {}  # printer -> its latest forecast event's data
        self.announced: set[str] = set()
        self._dirty = asyncio.Event()
        self._spoolman_checked: tuple[float, bool] | None = None  # (monotonic time, reachable)
        self.connected = asyncio.Event()  # set while a session runs (tests wait on it)

    @property
    def state_file(self) -> Path:
        return self.runtime.settings.server.data_dir / STATE_FILE

    # --- connection --------------------------------------------------------------------------------------

    def client(self) -> aiomqtt.Client:
        host, port, tls, username, password = self.config.broker()
        context = None
        if tls:
            context = ssl.create_default_context(cafile=str(self.config.ca_file) if self.config.ca_file else None)
            if self.config.tls_insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        will = aiomqtt.Will(self.topics.status, "offline", qos=1, retain=True)
        # One client id per Layerwise (two on one broker need their own topic_prefix anyway).
        identifier = f"layerwise-{discovery.object_id(self.config.topic_prefix)}"
        return aiomqtt.Client(host, port, username=username, password=password, identifier=identifier, will=will,
                              tls_context=context, tls_insecure=self.config.tls_insecure if tls else None,
                              logger=log)

    async def run(self) -> None:
        """Forever: a session per connection, retried with back-off; one warning per outage."""
        told = False
        while True:
            try:
                async with self.client() as client:
                    log.info("Home Assistant: connected to %s", self.config.shown_url())
                    told = False
                    self.backoff.reset()
                    await self.session(client)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if not told:
                    log.warning("Home Assistant: no connection to broker %s (%s); retrying", self.config.shown_url(),
                                exc)
                    told = True
            await asyncio.sleep(self.backoff.next_delay())

    async def session(self, client: aiomqtt.Client) -> None:
        tasks: list[asyncio.Task[None]] = []
        async with self.runtime.bus.subscribe() as events:
            self._seed_forecasts()
            try:
                await client.publish(self.topics.status, "online", qos=1, retain=True)
                self.announced = set(await asyncio.to_thread(self._load_announced))
                await self.publish_all(client, everything=True)  # a broker may have lost what it retained
                self.connected.set()
                tasks = [asyncio.create_task(self._listen(events)), asyncio.create_task(self._watch(client)),
                         asyncio.create_task(self._refresh(client))]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # the broker's MqttError ends the session
            finally:
                self.connected.clear()
                await stop_tasks(*tasks)
                # A clean stop sends no last will: say so ourselves, or HA shows stale values as current.
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(2):
                        await client.publish(self.topics.status, "offline", qos=1, retain=True)

    def _seed_forecasts(self) -> None:
        """The forecasts published before this session subscribed (the service says each change once only)."""
        service = self.runtime.forecast
        if service is not None:
            for name, latest in list(service.latest.items()):
                self.forecasts[name] = latest.event()

    async def _refresh(self, client: aiomqtt.Client) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), self.refresh_s)
            self._dirty.clear()
            await self.publish_all(client)

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Nothing is subscribed; reading the (empty) message stream is how a lost connection shows."""
        async for _ in client.messages:
            pass
        raise aiomqtt.MqttError("disconnected")

    async def _listen(self, events: asyncio.Queue[Event]) -> None:
        while True:
            event = await events.get()
            if event.kind == "forecast" and event.printer:
                self.forecasts[event.printer] = dict(event.data)
            if event.kind in ("forecast", "job", "printer", "slot", "spool", "ledger", "resync"):
                self._dirty.set()

    # --- what is published --------------------------------------------------------------------------------

    async def publish_all(self, client: aiomqtt.Client, *, everything: bool = False) -> None:
        """States every time; discovery payloads when new (or ``everything``, once per connection)."""
        configs: dict[str, dict[str, Any]] = discovery.health_discovery(self.topics)
        states: dict[str, dict[str, Any]] = {self.topics.state(discovery.HEALTH_ID): await self.health()}
        for name, task in self.runtime.printers.items():
            state, labels = await self.printer(name, task)
            configs |= discovery.printer_discovery(name, task.config.model, labels, self.topics)
            states[self.topics.state(discovery.device_id(name))] = state
        devices = [discovery.HEALTH_ID, *(discovery.device_id(name) for name in self.runtime.printers)]
        gone = discovery.removed(self.announced, devices, self.topics)
        for topic in gone:
            await client.publish(topic, b"", qos=1, retain=True)
        for topic in sorted(configs if everything else set(configs) - self.announced):
            await client.publish(topic, json.dumps(configs[topic]), qos=1, retain=True)
        announced = (self.announced - set(gone)) | set(configs)
        if announced != self.announced:
            self.announced = announced
            await asyncio.to_thread(self._save_announced)
        for topic, state in states.items():
            await client.publish(topic, json.dumps(state), qos=1, retain=True)

    async def printer(self, name: str, task: PrinterTask[JobTracker]) -> tuple[dict[str, Any], list[str]]:
        card = await printer_out(self.runtime, task)
        job_id = task.jobs.job_id
        detail = await asyncio.to_thread(statements.job_detail, self.runtime.db, job_id) if job_id else None
        forecast = self.forecasts.get(name) if job_id is not None else None
        trays = [TrayState(slot.label, slot.tray, slot.spool.name if slot.spool else None,
                           (slot.spool.material if slot.spool else None) or slot.material,
                           colour_name((slot.spool.color_hex if slot.spool else None) or slot.color_hex),
                           slot.spool.remaining_weight if slot.spool else None)
                 for slot in all_slots(card)]
        state = discovery.printer_state(
            online=card.online, job_state=card.job.state, job_name=card.job.name, layer=card.job.layer,
            total_layers=card.job.total_layers, grams=detail.grams if detail else None, trays=trays,
            forecast=forecast.get("trays") or [] if forecast and forecast.get("job_id") == job_id else [],
            now=datetime.now(UTC))
        return state, [t.label for t in trays]

    async def health(self) -> dict[str, Any]:
        reachable = await self._spoolman_reachable()
        waiting = sum(s.count for s in (await asyncio.to_thread(backlog.backlog, self.runtime.db)).spools)
        groups = await asyncio.to_thread(attention.attention_groups_count, self.runtime.db)
        return discovery.health_state(spoolman_reachable=reachable, bills_waiting=waiting, attention_groups=groups)

    async def _spoolman_reachable(self) -> bool:
        """Spoolman's health check, at most once per ``refresh_s``: states follow every bus event, and a
        Spoolman that is down would otherwise hold each of them up for its timeout."""
        spoolman = self.runtime.spoolman
        if spoolman is None:
            return False
        now = time.monotonic()
        if self._spoolman_checked is None or now - self._spoolman_checked[0] >= self.refresh_s:
            self._spoolman_checked = (now, await spoolman.health())
        return self._spoolman_checked[1]

    # --- what was announced (to clear removed printers) ---------------------------------------------------

    def _load_announced(self) -> list[str]:
        try:
            return list(json.loads(self.state_file.read_text(encoding="utf-8")).get("discovery_topics", []))
        except (OSError, ValueError):
            return []

    def _save_announced(self) -> None:
        self.state_file.write_text(json.dumps({"discovery_topics": sorted(self.announced)}, indent=1),
                                   encoding="utf-8")


def lifespans(runtime: Runtime) -> list[Callable[[object], contextlib.AbstractAsyncContextManager[None]]]:
    """The web app's lifespan for the bridge, when ``[home_assistant] mqtt_url`` is set."""
    config = runtime.settings.home_assistant
    if not config.mqtt_url:
        return []

    @contextlib.asynccontextmanager
    async def bridge(_app: object = None) -> AsyncIterator[None]:
        task = asyncio.create_task(supervise("Home Assistant bridge", Bridge(runtime, config).run))
        try:
            yield
        finally:
            await stop_tasks(task)

    return [bridge]
