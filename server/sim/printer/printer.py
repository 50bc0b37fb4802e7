"""The virtual Bambu Lab printer: MQTT over TLS, implicit FTPS, and a print driven step by step or paced.

State changes go through ``_change``: it merges the change into ``state`` and publishes what a real printer
of that model would (a ``msg: 1`` delta for P1/A1, the full state for X1/H2/P2). Faults are methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import re
import shutil
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from server.sim.printer.broker import PrinterBroker
from server.sim.printer.certs import CA_FILE_NAME, default_cert_dir, ensure_certificates
from server.sim.printer.ftps import ImplicitFtpsServer
from server.sim.printer.gcode import FilamentChange, PrintPlan, Progress, plan_from_file
from server.sim.printer.model import (
    EXTERNAL_SPOOL_ID,
    NO_TRAY,
    AmsUnit,
    Tray,
    global_tray_id,
    mapping_code,
    model_family,
)
from server.sim.printer.report import (
    ENVELOPE,
    ams_report,
    delta_report,
    idle_print_fields,
    initial_state,
    tray_from_report,
    tray_report,
    units_from_report,
)
from server.sim.printer.version import version_report

log = logging.getLogger(__name__)

# print_error values. 0x0300400C is the HMS code firmware reports for a job cancelled by the user;
# the failure code is an illustrative nonzero value (the simulator does not model failure causes).
CANCELLED_PRINT_ERROR = 0x0300400C
FAILED_PRINT_ERROR = 0x0C008001
# stg (stage list) that the captured A1 prints announced at PREPARE.
PREPARE_STAGES = [2, 13, 24, 4, 3, 14, 13]
_PLATE_PARAM = re.compile(r"plate_(\d+)\.gcode")
_ALL_EVENTS = sys.maxsize


@dataclass
class _Job:
    remote_path: str
    plate: int
    plan: PrintPlan
    ams_mapping: list[int]
    layer: int = 0
    position: int = 0  # events of the current layer already reported
    filament: int | None = None
    finished: bool = False
    mapping_at: int | None = None  # the layer at which the printer states print.mapping (None: at start, if ever)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)

    def tray_for(self, filament: int) -> int:
        if 0 <= filament < len(self.ams_mapping) and self.ams_mapping[filament] >= 0:
            return self.ams_mapping[filament]
        return EXTERNAL_SPOOL_ID

    def mapping_codes(self) -> list[int]:
        """``print.mapping`` as X1/H2/P2 firmware reports it: one code per slicer filament."""
        filaments = max(self.plan.filaments_used(), default=0) + 1
        return [mapping_code(self.tray_for(f)) for f in range(filaments)]


MODES = ("lan", "developer", "cloud", "silent")
REFUSED_ERR_CODE = 84033543  # what firmware with authorization control answers a refused request with


class VirtualPrinter:
    """A protocol-faithful stand-in for a Bambu Lab printer's LAN interfaces (async context manager)."""

    def __init__(self, *, serial: str = "01P00A000000001", access_code: str = "12345678", model: str = "P1S",
                 host: str = "127.0.0.1", mqtt_port: int = 0, ftps_port: int = 0,
                 ams: list[AmsUnit] | None = None, external: Tray | None = None,
                 delta_reports: bool | None = None, cert_dir: Path | None = None, mode: str = "lan") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown printer mode {mode!r}; known: {', '.join(MODES)}")
        # lan: LAN-only mode, every request answered. developer: Developer Mode (LAN-only with
        # authorization control lifted): the same. cloud: cloud mode on firmware with authorization
        # control: requests refused with an error answer, P1-style delta reports, prints carry an
        # https URL. silent: firmware that never answers a request (reports flow as deltas).
        self.mode = mode
        if mode in ("cloud", "silent"):
            delta_reports = True
        self.serial = serial
        self.host = host
        self.family = model_family(model)
        self.model = model
        self.delta_reports = self.family.delta_reports if delta_reports is None else delta_reports
        self.ams: list[AmsUnit] = [AmsUnit(0)] if ams is None else ams
        self.external: Tray = external or Tray(slot=EXTERNAL_SPOOL_ID, remain=0)
        self.requests: list[dict[str, Any]] = []
        # The latest reports published on the report topic, in order (bounded for long --loop runs).
        self.reports: deque[dict[str, Any]] = deque(maxlen=10_000)
        # Set by `layerwise simulate`: print commands received over MQTT then run paced by themselves.
        self.auto_layer_seconds: float | None = None
        self.state: dict[str, Any] = initial_state(self.family, self.ams, self.external)
        self._access_code = access_code
        self._cert_dir = cert_dir or default_cert_dir(serial)
        # PEM of the printer's own CA, for clients to trust (written by start()).
        self.ca_cert_path: Path = self._cert_dir / CA_FILE_NAME
        self._tray_now = self._tray_tar = self._tray_pre = NO_TRAY
        self._ams_version = 1
        self._sequence = 0
        self._silent_until = 0.0
        self._job: _Job | None = None
        self._runner: asyncio.Task[None] | None = None
        self._storage: Path | None = None
        self._own_storage = False
        self._mqtt_port = mqtt_port
        self._ftps_port = ftps_port
        self._broker: PrinterBroker | None = None
        self._ftps: ImplicitFtpsServer | None = None

    def __repr__(self) -> str:
        return (f"VirtualPrinter(serial={self.serial!r}, model={self.model!r}, host={self.host!r}, "
                f"mqtt_port={self.mqtt_port}, ftps_port={self.ftps_port})")

    # --- lifecycle -------------------------------------------------------------------------------------

    @property
    def mqtt_port(self) -> int:
        return self._broker.port if self._broker else self._mqtt_port

    @property
    def ftps_port(self) -> int:
        return self._ftps.port if self._ftps else self._ftps_port

    @property
    def storage(self) -> Path:
        """The folder served as the printer's storage root (``/``)."""
        if self._storage is None:
            self._storage = Path(tempfile.mkdtemp(prefix="layerwise-printer-"))
            self._own_storage = True
        return self._storage

    async def start(self) -> None:
        # Key generation is CPU work: keep it off the event loop.
        certs = await asyncio.to_thread(ensure_certificates, self._cert_dir, self.serial)
        self.ca_cert_path = certs.ca_cert
        self._ftps = ImplicitFtpsServer(root=self.storage, access_code=self._access_code, certs=certs,
                                        host=self.host, port=self._ftps_port)
        await asyncio.to_thread(self._ftps.start)
        self._broker = PrinterBroker(serial=self.serial, access_code=self._access_code, certs=certs,
                                     on_request=self.handle_request, host=self.host, port=self._mqtt_port)
        await self._broker.start()

    async def close(self) -> None:
        await self._stop_runner()
        if self._broker is not None:
            await self._broker.stop()
            self._broker.forget()
        if self._ftps is not None:
            await asyncio.to_thread(self._ftps.stop)
        if self._own_storage and self._storage is not None:
            shutil.rmtree(self._storage, ignore_errors=True)

    async def __aenter__(self) -> VirtualPrinter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- files -----------------------------------------------------------------------------------------

    def add_file(self, remote_path: str, data: bytes | Path) -> None:
        """Put a file on the printer's storage, e.g. ``/cache/cube.gcode.3mf``."""
        target = self._local_path(remote_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.read_bytes() if isinstance(data, Path) else data)

    def _local_path(self, remote_path: str) -> Path:
        parts = [p for p in PurePosixPath("/" + remote_path.lstrip("/")).parts[1:] if p not in ("..", ".")]
        return self.storage.joinpath(*parts)

    # --- publishing ------------------------------------------------------------------------------------

    @property
    def silent(self) -> bool:
        return time.monotonic() < self._silent_until

    async def publish_report(self, payload: dict[str, Any]) -> None:
        """Publish a raw payload on ``device/<serial>/report`` (e.g. a line of a recorded sequence).

        Its ``print`` part is merged into ``state`` so a later ``pushall`` answers consistently.
        """
        if isinstance(payload.get("print"), dict) and payload["print"].get("command") == "push_status":
            _merge(self.state["print"], {k: v for k, v in payload["print"].items() if k not in ("msg",)})
        await self._publish(payload)

    async def _publish(self, payload: dict[str, Any]) -> None:
        if self.silent or self._broker is None:
            return
        self.reports.append(copy.deepcopy(payload))
        await self._broker.publish(payload)

    def _envelope(self, body: dict[str, Any], msg: int) -> dict[str, Any]:
        self._sequence += 1
        return {"print": {**body, "command": "push_status", "msg": msg, "sequence_id": str(self._sequence)}}

    async def push_full_state(self) -> None:
        await self._publish(self._envelope(copy.deepcopy(self.state["print"]), 0))

    async def _change(self, *, always: tuple[str, ...] = (), **fields: Any) -> None:
        """Merge ``fields`` into the print state and report the change the way this model does.

        ``always`` names fields a delta carries even when unchanged (the firmware repeats e.g. layer_num 0
        and mc_percent 0 when a job starts RUNNING).
        """
        old = copy.deepcopy(self.state)
        _merge(self.state["print"], fields)
        if not self.delta_reports:
            await self.push_full_state()
            return
        delta = delta_report(old, self.state)
        delta.update({key: copy.deepcopy(fields[key]) for key in always if key in fields})
        if delta:
            await self._publish(self._envelope(delta, 1))

    def _ams_block(self) -> dict[str, Any]:
        return ams_report(self.ams, tray_now=self._tray_now, tray_tar=self._tray_tar, tray_pre=self._tray_pre,
                          version=self._ams_version)

    async def _change_ams(self, **fields: Any) -> None:
        self._ams_version += 1
        await self._change(ams=self._ams_block(), **fields)

    async def _set_trays(self, *, now: int | None = None, tar: int | None = None, pre: int | None = None,
                         **fields: Any) -> None:
        self._tray_now = self._tray_now if now is None else now
        self._tray_tar = self._tray_tar if tar is None else tar
        self._tray_pre = self._tray_pre if pre is None else pre
        await self._change_ams(**fields)

    # --- requests --------------------------------------------------------------------------------------

    async def handle_request(self, payload: dict[str, Any]) -> None:
        """Answer one message published on ``device/<serial>/request``."""
        self.requests.append(payload)
        pushing, info, command = payload.get("pushing"), payload.get("info"), payload.get("print")
        if self.mode == "silent":
            return
        if self.mode == "cloud":
            await self._refuse(payload)
            return
        if isinstance(pushing, dict) and pushing.get("command") == "pushall":
            await self.push_full_state()
        if isinstance(info, dict) and info.get("command") == "get_version":
            sequence_id = str(info.get("sequence_id", "0"))
            await self._publish(version_report(self.family, self.serial, self.ams, sequence_id))
        if isinstance(command, dict):
            await self._handle_print_command(command)

    async def _refuse(self, payload: dict[str, Any]) -> None:
        """Authorization control: each request is answered with an error in its own section."""
        for section, body in payload.items():
            if isinstance(body, dict) and isinstance(body.get("command"), str):
                await self._publish({section: {
                    "command": body["command"], "sequence_id": str(body.get("sequence_id", "0")),
                    "result": "failed", "reason": "authorization failed", "err_code": REFUSED_ERR_CODE}})

    async def _handle_print_command(self, command: dict[str, Any]) -> None:
        name = command.get("command")
        if name == "project_file":
            await self._start_from_request(command)
            return
        actions = {"pause": self.pause, "resume": self.resume, "stop": self.cancel}
        if name in actions:
            ok = self._job is not None and not self._job.finished
            await self._publish({"print": {"command": name, "sequence_id": str(command.get("sequence_id", "0")),
                                           "result": "success" if ok else "fail",
                                           "reason": "success" if ok else "no print job"}})
            if ok:
                await actions[name]()

    async def _start_from_request(self, command: dict[str, Any]) -> None:
        remote_path = _remote_path_from_url(str(command.get("url", "")), str(command.get("file", "")))
        plate_match = _PLATE_PARAM.search(str(command.get("param", "")))
        plate = int(plate_match.group(1)) if plate_match else 1
        mapping = command.get("ams_mapping")
        ams_mapping = [int(x) for x in mapping] if isinstance(mapping, list) else None
        if command.get("use_ams") is False:
            ams_mapping = []  # every filament from the external spool
        echo = {**command, "result": "success", "reason": "success"}
        refusal = None
        if self.printing:
            refusal = "printer is busy"
        elif not self._local_path(remote_path).is_file():
            refusal = f"file not found: {remote_path}"
        if refusal is not None:
            await self._publish({"print": {**echo, "result": "fail", "reason": refusal}})
            return
        await self._publish({"print": echo})
        kwargs: dict[str, Any] = {
            "plate": plate, "ams_mapping": ams_mapping, "announce": False,
            "subtask_name": command.get("subtask_name") or None, "url": command.get("url") or None,
            "task_id": str(command.get("task_id", "0")),
        }
        try:
            await self._stop_runner()
            await self.start_print(remote_path, **kwargs)
        except (OSError, KeyError, ValueError) as error:  # not a readable 3MF, or no such plate
            log.warning("cannot print %s: %s", remote_path, error)
            await self._change(gcode_state="FAILED", print_error=FAILED_PRINT_ERROR)
            return
        if self.auto_layer_seconds is not None:
            self._runner = asyncio.create_task(self._pace(self.auto_layer_seconds))

    # --- a print, step by step -------------------------------------------------------------------------

    async def start_print(self, remote_path: str, *, plate: int = 1, ams_mapping: list[int] | None = None,
                          announce: bool = True, subtask_name: str | None = None, url: str | None = None,
                          task_id: str | None = None, state_mapping_at: int | None = None) -> None:
        """Start a job from a file on the printer's storage: PREPARE, then RUNNING at layer 0.

        ``announce=True`` publishes the ``project_file`` echo first (like a cloud/slicer print on X1 or a
        print sent by a LAN client); ``False`` is an A1 LAN print started from the screen: only
        gcode_state / gcode_file / subtask_name change.

        ``state_mapping_at=N`` is a printer that states ``print.mapping`` late: it reports ``mapping: []``
        as the job starts and the job's mapping only with layer N (0: at the start), whatever the model
        (P1/A1 firmware never states it otherwise). Trackers must bill the layers before it all the same.
        """
        data = self._local_path(remote_path).read_bytes()
        plan = await asyncio.to_thread(plan_from_file, data, plate)
        filaments = max(plan.filaments_used(), default=0) + 1
        if ams_mapping is None:
            ams_mapping = [self._default_tray(i) for i in range(filaments)]
        job = _Job(remote_path, plate, plan, list(ams_mapping), mapping_at=state_mapping_at)
        job.resumed.set()
        if self._job is not None and not self._job.finished:
            # A new job replaces one still under way: its paced runner, if any, stops at its next step.
            self._job.finished = True
            self._job.resumed.set()
        self._job = job
        file_name = PurePosixPath(remote_path).name
        project_name = _strip_3mf(file_name)
        if url is None and self.mode == "cloud":
            # A cloud print names a signed https URL. The virtual printer has no cloud: this one answers
            # nothing (like a URL that expired), so a client finds the file on the printer's storage.
            url = f"https://127.0.0.1:1/{PurePosixPath(remote_path).name}?signature=virtual"
        url = url or f"file:///sdcard{remote_path if remote_path.startswith('/') else '/' + remote_path}"
        cloud = url.startswith(("http://", "https://"))
        task = task_id or "0"
        if announce:
            await self._publish({"print": _project_file_echo(
                plate=plate, url=url, subtask_name=subtask_name or project_name, ams_mapping=job.ams_mapping,
                task_id=task)})
        gcode_file = (f"/data/Metadata/plate_{plate}.gcode" if self.family.gcode_file_in_data
                      else file_name if not announce else f"{project_name}.3mf")
        await self._change(
            subtask_name=subtask_name or (project_name if announce else file_name), gcode_file=gcode_file,
            print_type="cloud" if cloud else "local", project_id=task, task_id=task, subtask_id=task,
            profile_id="0", print_error=0)
        await self._change(gcode_state="PREPARE", stg=list(PREPARE_STAGES), total_layer_num=plan.total_layers)
        running: dict[str, Any] = {"mc_print_stage": "2", "mc_percent": 0, "gcode_state": "RUNNING",
                                   "stg_cur": 2, "layer_num": 0}
        estimate = next((e.remaining_minutes for e in plan.layers[0].events
                         if isinstance(e, Progress) and e.remaining_minutes is not None), None)
        if estimate is not None:  # the firmware reports the slicer's estimate as the job starts
            running["mc_remaining_time"] = estimate
        if job.mapping_at is not None:
            # Stated late: the last print's mapping is cleared now, so the late statement is news.
            running["mapping"] = job.mapping_codes() if job.mapping_at <= 0 else []
        elif self.family.reports_mapping:
            running["mapping"] = job.mapping_codes()
        await self._change(always=("mc_percent", "layer_num"), **running)

    def _default_tray(self, filament: int) -> int:
        trays = [global_tray_id(u.id, t.slot) for u in self.ams for t in u.trays if not t.empty]
        return trays[filament] if filament < len(trays) else EXTERNAL_SPOOL_ID

    @property
    def printing(self) -> bool:
        """A job is under way (running or paused)."""
        return self._job is not None and not self._job.finished

    def _require_job(self) -> _Job:
        if self._job is None or self._job.finished:
            raise RuntimeError("no print job is running")
        return self._job

    @property
    def layer(self) -> int:
        return self._job.layer if self._job else 0

    async def _play(self, job: _Job, until: int) -> None:
        """Report the current layer's events up to position ``until``."""
        events = job.plan.layers[job.layer].events if job.layer < len(job.plan.layers) else []
        # A job ended meanwhile (stopped, replaced, printer rebooted) reports nothing more.
        while job.position < min(until, len(events)) and not job.finished:
            event = events[job.position]
            job.position += 1
            if isinstance(event, Progress):
                fields: dict[str, Any] = {"mc_percent": event.percent}
                if event.remaining_minutes is not None:
                    fields["mc_remaining_time"] = event.remaining_minutes
                await self._change(**fields)
            elif isinstance(event, FilamentChange) and event.filament != job.filament:
                await self._load(job, event.filament)

    async def _load(self, job: _Job, filament: int) -> None:
        """Filament change as the captures show it: tray_tar, unload (tray_now 255), load, tray_pre."""
        tray = job.tray_for(filament)
        job.filament = filament
        if tray == self._tray_now:  # already loaded (e.g. left in after a cancelled job)
            return
        await self._set_trays(tar=tray, mc_print_sub_stage=4)
        if self._tray_now != NO_TRAY:
            await self._set_trays(now=NO_TRAY)
        await self._set_trays(now=tray, mc_print_sub_stage=2)
        await self._set_trays(pre=tray, mc_print_sub_stage=0)

    async def advance(self, layers: int = 1) -> None:
        """Finish the current layer(s): their progress marks and filament changes, then layer_num += 1."""
        job = self._require_job()
        for _ in range(layers):
            await self._play(job, _ALL_EVENTS)
            if job.finished or job.layer >= job.plan.total_layers:
                break
            job.layer += 1
            job.position = 0
            fields: dict[str, Any] = {"layer_num": job.layer, "stg_cur": 0}
            if job.mapping_at == job.layer:
                fields["mapping"] = job.mapping_codes()
            await self._change(**fields)

    async def goto_layer(self, n: int) -> None:
        job = self._require_job()
        if n < job.layer:
            raise ValueError(f"cannot go back from layer {job.layer} to {n}")
        await self.advance(n - job.layer)

    async def progress_within_layer(self, fraction: float) -> None:
        """Report the current layer's events up to ``fraction`` of the way through it."""
        job = self._require_job()
        events = job.plan.layers[job.layer].events
        await self._play(job, math.ceil(max(0.0, min(1.0, fraction)) * len(events)))

    async def finish(self) -> None:
        job = self._require_job()
        await self.goto_layer(job.plan.total_layers)
        await self._play(job, _ALL_EVENTS)
        await self._change(stg_cur=255)
        await self._set_trays(tar=NO_TRAY, mc_print_sub_stage=4)
        await self._set_trays(now=NO_TRAY, pre=NO_TRAY, mc_print_sub_stage=0)
        await self._change(mc_print_stage="1", mc_percent=100, mc_remaining_time=0, gcode_state="FINISH",
                           gcode_file="", stg=[], print_type="idle", always=("mc_print_stage", "mc_percent"))
        job.finished = True

    async def _end_with_error(self, print_error: int) -> None:
        job = self._require_job()
        job.finished = True
        job.resumed.set()
        await self._change(gcode_state="FAILED", print_error=print_error, mc_print_stage="1", gcode_file="",
                           stg=[], stg_cur=255, print_type="idle", mc_remaining_time=0)

    async def fail(self) -> None:
        """The job fails: gcode_state FAILED with a nonzero print_error."""
        await self._end_with_error(FAILED_PRINT_ERROR)

    async def cancel(self) -> None:
        """Cancelled like P1/A1 firmware reports it: gcode_state FAILED, print_error 0x0300400C."""
        await self._end_with_error(CANCELLED_PRINT_ERROR)

    async def clear_print_error(self) -> None:
        """print_error back to 0 while gcode_state stays FAILED, as firmware does seconds after a cancel."""
        await self._change(print_error=0)

    async def pause(self) -> None:
        job = self._require_job()
        job.resumed.clear()
        await self._change(gcode_state="PAUSE", mc_print_stage="3")

    async def resume(self) -> None:
        job = self._require_job()
        await self._change(gcode_state="RUNNING", mc_print_stage="2", print_error=0)
        job.resumed.set()

    async def heartbeat(self, wobble: float) -> None:
        """The report the firmware sends about every second while printing, with nothing new in it but
        temperatures (a delta on P1/A1, the full state on X1): the background load of a real printer."""
        await self._change(nozzle_temper=round(220.0 + wobble, 1), bed_temper=round(60.0 + wobble / 4, 1))

    # --- a paced print ---------------------------------------------------------------------------------

    async def run_print(self, remote_path: str, *, layer_seconds: float, cancel_at: int | None = None,
                        fail_at: int | None = None, **start_kwargs: Any) -> None:
        """Print the whole file at ``layer_seconds`` per layer; pause/resume/stop commands are honoured."""
        await self.start_print(remote_path, **start_kwargs)
        await self._pace(layer_seconds, cancel_at=cancel_at, fail_at=fail_at)

    async def _pace(self, layer_seconds: float, *, cancel_at: int | None = None,
                    fail_at: int | None = None) -> None:
        """Drive the current job to its end, half a layer at a time, waiting while it is paused."""
        job = self._require_job()
        half = layer_seconds / 2
        while not job.finished:
            if job.layer == cancel_at:
                await self.cancel()
                await asyncio.sleep(layer_seconds)
                await self.clear_print_error()
                return
            if job.layer == fail_at:
                await self.fail()
                return
            if not await self._still_printing_after(job, half):
                return
            await self.progress_within_layer(0.5)
            if not await self._still_printing_after(job, half):
                return
            if job.layer >= job.plan.total_layers:
                await self.finish()
                return
            await self.advance(1)

    @staticmethod
    async def _still_printing_after(job: _Job, seconds: float) -> bool:
        """Sleep, then wait out a pause; False if the job ended (stopped, replaced) meanwhile."""
        await asyncio.sleep(seconds)
        await job.resumed.wait()
        return not job.finished

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None and not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    # --- faults ----------------------------------------------------------------------------------------

    async def go_silent(self, seconds: float) -> None:
        """Publish nothing (not even answers to pushall) for ``seconds``; connections stay up.

        Returns at once: the printer keeps changing state meanwhile, and the changes made while silent are
        lost to clients, as they would be with a printer whose reports stop arriving.
        """
        self._silent_until = time.monotonic() + seconds

    async def drop_connections(self) -> None:
        """Close every MQTT and FTPS client connection; both listeners stay up so clients can reconnect."""
        if self._broker is not None:
            await self._broker.drop_connections()
        if self._ftps is not None:
            await asyncio.to_thread(self._ftps.drop_connections)

    def report_subscribers(self) -> list[str]:
        """Client ids of the clients connected and subscribed to the report topic (none while the broker is down)."""
        return self._broker.subscribers(self._broker.report_topic) if self._broker is not None else []

    async def stop_broker(self) -> None:
        if self._broker is not None:
            await self._broker.stop()

    async def start_broker(self) -> None:
        if self._broker is not None:
            await self._broker.start()

    async def reboot(self) -> None:
        """Drop everything, forget the job (subtask_name "", gcode_state IDLE) and come back on the same ports."""
        await self._stop_runner()
        await self.stop_broker()
        if self._ftps is not None:
            await asyncio.to_thread(self._ftps.stop)
        if self._job is not None:  # a paced run of it (run_print) ends at its next step
            self._job.finished = True
            self._job.resumed.set()
        self._job = None
        self._tray_tar = self._tray_pre = NO_TRAY
        _merge(self.state["print"], idle_print_fields())
        self.state["print"]["ams"] = self._ams_block()
        if self._ftps is not None:
            await asyncio.to_thread(self._ftps.start)
        await self.start_broker()

    # --- recorded state ----------------------------------------------------------------------------------

    def load_state(self, payload: dict[str, Any]) -> None:
        """Start from a recorded full report (``{"print": {...}}``, e.g. any push_status capture).

        The AMS units, trays and external spool are taken from it, so later tray and print changes are
        reported on top of the recorded state.
        """
        recorded = copy.deepcopy(payload.get("print", payload))
        for key in ENVELOPE:
            recorded.pop(key, None)
        ams = recorded.get("ams") or {}
        self.ams = units_from_report(ams)
        if isinstance(recorded.get("vt_tray"), dict):
            self.external = tray_from_report(recorded["vt_tray"], EXTERNAL_SPOOL_ID)
        self._tray_now = int(ams.get("tray_now", NO_TRAY))
        self._tray_tar = int(ams.get("tray_tar", NO_TRAY))
        self._tray_pre = int(ams.get("tray_pre", NO_TRAY))
        self._ams_version = int(ams.get("version", 1))
        self._job = None
        self.state = {"print": {**initial_state(self.family, self.ams, self.external)["print"], **recorded}}

    # --- trays -----------------------------------------------------------------------------------------

    def _tray(self, ams_id: int, slot: int) -> Tray:
        if ams_id in (EXTERNAL_SPOOL_ID, NO_TRAY):
            return self.external
        for unit in self.ams:
            if unit.id == ams_id:
                for tray in unit.trays:
                    if tray.slot == slot:
                        return tray
        raise KeyError(f"no tray {slot} in AMS {ams_id}")

    def _update_tray(self, ams_id: int, slot: int, fields: dict[str, Any]) -> None:
        tray = self._tray(ams_id, slot)
        for name, value in fields.items():
            if not hasattr(tray, name):
                raise AttributeError(f"Tray has no field {name!r}")
            setattr(tray, name, value)

    def set_tray(self, ams_id: int, slot: int, **fields: Any) -> None:
        """Change a tray's fields (type, color, tray_uuid, tag_uid, remain, weight_g, empty, ...) silently."""
        self._update_tray(ams_id, slot, fields)
        self.state["print"]["ams"] = self._ams_block()
        self.state["print"]["vt_tray"] = tray_report(self.external, tray_id=EXTERNAL_SPOOL_ID)

    async def runout(self, filament: int, backup_ams_id: int, backup_slot: int) -> None:
        """The spool feeding ``filament`` runs out and the AMS continues from a backup tray holding the
        same filament (auto-refill): the firmware unloads the empty tray and loads the backup, and from
        then on prints that filament from the backup."""
        job = self._require_job()
        backup = global_tray_id(backup_ams_id, backup_slot)
        while len(job.ams_mapping) <= filament:
            job.ams_mapping.append(-1)
        old = job.tray_for(filament)
        job.ams_mapping[filament] = backup
        if old != EXTERNAL_SPOOL_ID:
            self._update_tray(old // 4, old % 4, {"remain": 0})
        if job.filament == filament:
            await self._set_trays(tar=backup, mc_print_sub_stage=4)
            await self._set_trays(now=NO_TRAY)
            await self._set_trays(now=backup, mc_print_sub_stage=2)
            await self._set_trays(pre=backup, mc_print_sub_stage=0)

    async def push_tray_change(self, ams_id: int, slot: int, **fields: Any) -> None:
        """Change a tray and report it (an RFID tag appearing, changing or removed; a spool swapped)."""
        self._update_tray(ams_id, slot, fields)
        if ams_id in (EXTERNAL_SPOOL_ID, NO_TRAY):
            await self._change(vt_tray=tray_report(self.external, tray_id=EXTERNAL_SPOOL_ID))
        else:
            await self._change_ams()


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _strip_3mf(name: str) -> str:
    for suffix in (".gcode.3mf", ".3mf", ".gcode"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _remote_path_from_url(url: str, file: str) -> str:
    """``file:///sdcard/cache/x.gcode.3mf``, ``ftp:///cache/x.gcode.3mf`` or a bare name -> a storage path."""
    for prefix in ("file:///sdcard", "file:///mnt/sdcard", "ftp://", "file://"):
        if url.startswith(prefix):
            path = url[len(prefix):]
            return path if path.startswith("/") else "/" + path
    name = PurePosixPath(file or url).name
    return f"/cache/{name}" if name else "/"


def _project_file_echo(*, plate: int, url: str, subtask_name: str, ams_mapping: list[int],
                       task_id: str) -> dict[str, Any]:
    """The project_file message a printer repeats on its report topic when a job is sent to it."""
    real_trays = [tray for tray in ams_mapping if 0 <= tray < EXTERNAL_SPOOL_ID]
    return {
        "sequence_id": "0", "command": "project_file", "param": f"Metadata/plate_{plate}.gcode",
        "project_id": task_id, "profile_id": "0", "task_id": task_id, "subtask_id": task_id,
        "subtask_name": subtask_name, "plate_idx": str(plate), "url": url, "md5": "",
        "timelapse": False, "bed_leveling": True, "flow_cali": False, "vibration_cali": False,
        "layer_inspect": False, "use_ams": bool(real_trays), "ams_mapping": list(ams_mapping),
        "ams_mapping2": [_mapping2(tray) for tray in ams_mapping],
        "reason": "success", "result": "success",
    }


def _mapping2(tray: int) -> dict[str, int]:
    if tray < 0:
        return {"ams_id": 255, "slot_id": 255}
    if tray >= 128:
        return {"ams_id": tray, "slot_id": 0}
    return {"ams_id": tray // 4, "slot_id": tray % 4}
