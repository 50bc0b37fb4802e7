"""The MQTT link to one printer: login, reports in, requests out, reconnects forever.

The printer runs its own broker (TLS on 8883, user ``bblp``, password = the LAN access code). Reports arrive
on ``device/<serial>/report``; requests go to ``device/<serial>/request``. After every (re)connect the link
asks for ``get_version`` and a ``pushall`` (rate-limited: a flapping link must not flood the printer; a
skipped pushall is sent once the limit allows, if still connected). A link that stays up but carries no
report for ``silence_timeout`` asks for pushall, and after twice that reconnects. A printer that refuses
requests (an error answer, or none within ``answer_timeout``) is reported through ``on_limited`` once per
connection and asked again only every ``refused_retry`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiomqtt

from server.config import PrinterConfig
from server.printer.errors import BadReport, PrinterAuthError, PrinterError, PrinterTLSError, PrinterUnreachable
from server.printer.pacing import RateLimiter
from server.printer.refusals import ANSWER_TIMEOUT, REFUSED_RETRY, RequestWatch, refusal
from server.printer.tls import PinStore, client_ssl_context
from server.printer.values import OnceLog
from server.retry import Backoff

log = logging.getLogger(__name__)

USERNAME = "bblp"
PUSHALL: dict[str, Any] = {"pushing": {"sequence_id": "0", "command": "pushall", "version": 1, "push_target": 1}}
GET_VERSION: dict[str, Any] = {"info": {"sequence_id": "0", "command": "get_version"}}
_AUTH_CODES = {4, 5, 134, 135}  # MQTT 3.1.1 CONNACK 4/5 and their MQTT 5 equivalents (paho maps to these)

LinkState = Literal["connecting", "online", "offline"]


@dataclass(frozen=True)
class LinkStatus:
    state: LinkState
    detail: str = ""
    error: Literal["auth", "tls", "unreachable"] | None = None
    retry_in: float | None = None  # seconds until the next attempt, when offline

    @property
    def online(self) -> bool:
        return self.state == "online"




def report_topic(serial: str) -> str:
    return f"device/{serial}/report"


def request_topic(serial: str) -> str:
    return f"device/{serial}/request"


MAX_REPORT_BYTES = 1 << 20  # the largest real report seen is 26 KB (an H2D with two AMS HT)
MAX_REPORT_DEPTH = 32  # real reports nest 8 deep; json and copy recurse, so refuse before decoding
# Every byte but quotes and brackets, for bytes.translate (C speed: a farm decodes ~50 full X1 reports a second).
_NOT_QUOTE_OR_BRACKET = bytes(b for b in range(256) if b not in b'"[]{}')


def nesting_depth(raw: bytes, limit: int = MAX_REPORT_DEPTH) -> int:
    """How deep the JSON text ``raw`` nests (brackets inside strings do not count), up to ``limit + 1``:
    linear, and at C speed but for the brackets. Exact for valid JSON; what it says of invalid text does not
    matter (json refuses it next)."""
    # Escaped backslashes, then escaped quotes, go first: every quote left then opens or closes a string,
    # so the parts outside strings are every other part between quotes. (A regex over strings took 3x longer.)
    bare = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_QUOTE_OR_BRACKET)
    brackets = b"".join(bare.split(b'"')[::2])
    depth = peak = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > peak:
            peak = depth
            if peak > limit:
                break
    return peak


def decode_report(raw: bytes | bytearray | str) -> dict[str, Any]:
    """The JSON object in a report; ``BadReport`` when it is too big, too deep, not JSON or not an object."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if len(data) > MAX_REPORT_BYTES:
        raise BadReport("payload:size", f"report of {len(data):,} bytes is larger than {MAX_REPORT_BYTES:,}; skipped")
    if nesting_depth(data) > MAX_REPORT_DEPTH:
        raise BadReport("payload:depth", f"report nests deeper than {MAX_REPORT_DEPTH} levels; skipped")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise BadReport("payload:json", "report is not valid JSON; skipped") from None
    except RecursionError:  # the depth check should have caught it; never a traceback per message
        raise BadReport("payload:depth", f"report nests deeper than {MAX_REPORT_DEPTH} levels; skipped") from None
    if not isinstance(value, dict):
        name = type(value).__name__
        raise BadReport(f"payload:{name}", f"report is JSON {name}, not an object; skipped")
    return value


def decode_payload(raw: bytes | bytearray | str, once: OnceLog,
                   on_bad: Callable[[BadReport], None] | None = None) -> dict[str, Any] | None:
    """The JSON object in a report, or None (each kind of bad payload logged once per printer, and
    passed to ``on_bad``)."""
    try:
        return decode_report(raw)
    except BadReport as bad:
        once.warn(bad.kind, "%s", str(bad))
        if on_bad is not None:
            on_bad(bad)
        return None


def mqtt_error(cfg: PrinterConfig, exc: BaseException) -> PrinterError:
    """A person-readable adapter error for an aiomqtt/paho failure (never containing the access code)."""
    if isinstance(exc, PrinterError):
        return exc
    rc = getattr(exc, "rc", None)
    code = getattr(rc, "value", rc)
    if isinstance(exc, aiomqtt.MqttCodeError) and code in _AUTH_CODES:
        return PrinterAuthError(f"printer {cfg.name}: the access code was refused (MQTT login)")
    text = str(exc)
    if "refused" in text.lower() and "errno" in text.lower():
        return PrinterUnreachable(f"printer {cfg.name}: connection refused at {cfg.host}:{cfg.mqtt_port}")
    if "timed out" in text.lower():
        return PrinterUnreachable(f"printer {cfg.name}: timed out reaching {cfg.host}:{cfg.mqtt_port}")
    if "SSL" in text or "certificate" in text.lower():
        return PrinterTLSError(f"printer {cfg.name}: TLS failed on MQTT: {text}")
    return PrinterUnreachable(f"printer {cfg.name}: MQTT: {text or type(exc).__name__}")


def _error_kind(error: PrinterError) -> Literal["auth", "tls", "unreachable"]:
    if isinstance(error, PrinterAuthError):
        return "auth"
    if isinstance(error, PrinterTLSError):
        return "tls"
    return "unreachable"


def mqtt_client(cfg: PrinterConfig, pins: PinStore | None, *, identifier: str,
                timeout: float = 10.0) -> aiomqtt.Client:
    return aiomqtt.Client(
        hostname=cfg.host, port=cfg.mqtt_port, username=USERNAME,
        password=cfg.access_code.get_secret_value(), identifier=identifier,
        tls_context=client_ssl_context(cfg, pins), keepalive=30, timeout=timeout,
    )


class PrinterLink:
    """Keeps one printer's MQTT connection up; ``run`` until cancelled, ``publish`` whenever online."""

    def __init__(self, cfg: PrinterConfig, pins: PinStore | None = None, *, backoff: Backoff | None = None,
                 pushall_interval: float = 30.0, timeout: float = 10.0,
                 silence_timeout: float = 180.0,
                 on_bad_report: Callable[[BadReport], None] | None = None,
                 on_limited: Callable[[str | None], Awaitable[None]] | None = None,
                 answer_timeout: float = ANSWER_TIMEOUT, refused_retry: float = REFUSED_RETRY) -> None:
        self.cfg = cfg
        self.pins = pins
        self.backoff = backoff or Backoff(first=1.0, cap=60.0)
        self.pushall_limit = RateLimiter(pushall_interval)
        self.timeout = timeout
        # A printer may go quiet while the connection stays up: after this long without a report the link
        # asks for pushall; after twice this long it reconnects.
        self.silence_timeout = silence_timeout
        # Unique per instance: two Layerwise processes (or a restart racing the old session) must not
        # kick each other off the printer's broker.
        self.client_id = f"layerwise-{uuid.uuid4().hex[:12]}"
        self.once = OnceLog(cfg.name, log)
        self.on_bad_report = on_bad_report  # told of every report refused before decoding
        # Told once per connection when the printer refuses (or ignores) requests, and when it answers again.
        self.on_limited = on_limited
        self.answer_timeout = answer_timeout
        self.refused_retry = refused_retry
        self.watch = RequestWatch()
        self._retry_at = 0.0  # monotonic time before which refused requests are not sent again
        self._told: str | None = None  # what on_limited was last told on this connection
        self._client: aiomqtt.Client | None = None
        self._pending_pushall: asyncio.Task[None] | None = None
        self._last_error: str | None = None

    def __repr__(self) -> str:
        return f"PrinterLink(printer={self.cfg.name!r}, host={self.cfg.host!r}, online={self.online})"

    @property
    def online(self) -> bool:
        return self._client is not None

    @property
    def limited(self) -> str | None:
        return self.watch.limited

    async def _ask(self) -> None:
        """get_version and pushall, each watched for its answer; a printer that refused them is asked
        again only after ``refused_retry`` (a retry loop would only collect more refusals)."""
        now = time.monotonic()
        if self.watch.refused and now < self._retry_at:
            return
        if self.watch.refused:
            log.info("printer %s: asking again for the full state and versions", self.cfg.name)
        self._retry_at = now + self.refused_retry
        self.watch.sent("get_version", now)
        await self.publish(GET_VERSION)
        self.watch.sent("pushall", now)
        await self.request_pushall()

    async def _check_requests(self) -> None:
        now = time.monotonic()
        self.watch.expire(now, self.answer_timeout)
        if self.watch.refused and not self.watch.pending and now >= self._retry_at:
            await self._ask()
        await self._tell()

    async def _tell(self) -> None:
        limited = self.watch.limited
        if limited == self._told or (limited is not None and self._told is None and self.watch.pending):
            return  # said once per connection, when every request asked has had its answer (or timed out)
        self._told = limited
        if limited is not None:
            log.warning("printer %s: %s", self.cfg.name, limited)
        else:
            log.info("printer %s answers requests again", self.cfg.name)
        if self.on_limited is not None:
            await self.on_limited(limited)

    def _next_wake(self) -> float | None:
        """When the request watch next needs a look (an answer due, a slow retry due)."""
        due = [t for t in (self.watch.deadline(self.answer_timeout),
                           self._retry_at if self.watch.refused else None) if t is not None]
        return min(due) if due else None

    async def publish(self, payload: dict[str, Any]) -> None:
        client = self._client
        if client is None:
            raise PrinterUnreachable(f"printer {self.cfg.name}: not connected")
        try:
            await client.publish(request_topic(self.cfg.serial), json.dumps(payload), qos=1,
                                 timeout=self.timeout)
        except aiomqtt.MqttError as exc:
            raise mqtt_error(self.cfg, exc) from None

    async def request_pushall(self) -> None:
        """Ask for the full state now, or as soon as the rate limit allows (at most one waiting)."""
        wait = self.pushall_limit.wait_time(time.monotonic())
        if wait <= 0:
            self.pushall_limit.record(time.monotonic())
            await self.publish(PUSHALL)
        elif self._pending_pushall is None or self._pending_pushall.done():
            self._pending_pushall = asyncio.create_task(self._pushall_later(wait))

    async def _pushall_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.online:
            # Send it now, without asking the limiter again: a timer may wake a hair early (uvloop),
            # and this task is the one waiting, so asking again would drop the pushall.
            self.pushall_limit.record(time.monotonic())
            with contextlib.suppress(PrinterError):
                await self.publish(PUSHALL)

    async def run(self, on_message: Callable[[dict[str, Any]], Awaitable[None]],
                  on_status: Callable[[LinkStatus], Awaitable[None]]) -> None:
        """Connect, deliver every report object to ``on_message``, reconnect after any failure; forever.

        Exceptions raised by the callbacks are not MQTT failures: they end ``run`` for the caller's
        supervisor to see.
        """
        while True:
            await on_status(LinkStatus("connecting", f"{self.cfg.host}:{self.cfg.mqtt_port}"))
            try:
                await self._session(on_message, on_status)
                error: PrinterError = PrinterUnreachable(f"printer {self.cfg.name}: connection closed")
            except asyncio.CancelledError:
                raise
            except (aiomqtt.MqttError, PrinterError) as exc:
                log.debug("printer %s: link ended: %r", self.cfg.name, exc, exc_info=True)
                error = mqtt_error(self.cfg, exc)
            finally:
                self._client = None
                if self._pending_pushall is not None:
                    self._pending_pushall.cancel()
            delay = self.backoff.next_delay()
            # A printer switched off for the night fails every minute: warn once, then keep it quieter.
            repeated = str(error) == self._last_error
            self._last_error = str(error)
            log.log(logging.INFO if repeated else logging.WARNING, "%s; reconnecting in %.1f s", error, delay)
            await on_status(LinkStatus("offline", str(error), _error_kind(error), delay))
            await asyncio.sleep(delay)

    async def _session(self, on_message: Callable[[dict[str, Any]], Awaitable[None]],
                       on_status: Callable[[LinkStatus], Awaitable[None]]) -> None:
        async with mqtt_client(self.cfg, self.pins, identifier=self.client_id, timeout=self.timeout) as client:
            await client.subscribe(report_topic(self.cfg.serial), qos=0)
            self._client = client
            self._last_error = None
            await on_status(LinkStatus("online", f"logged in as {USERNAME}"))
            self._told = None  # a printer that refuses requests is reported once per connection
            self.watch.pending.clear()
            await self._ask()
            await self._tell()  # still limited from the last connection (not asked again yet)
            messages = client.messages.__aiter__()
            quiet_periods = 0
            last_report = time.monotonic()
            waiting: asyncio.Future[aiomqtt.Message] | None = None
            try:
                while True:
                    if waiting is None:
                        waiting = asyncio.ensure_future(messages.__anext__())
                    quiet_at = last_report + (quiet_periods + 1) * self.silence_timeout
                    wake = min(quiet_at, self._next_wake() or quiet_at)
                    # Not wait_for: cancelling the pending read could drop a report that just arrived.
                    done, _ = await asyncio.wait({waiting}, timeout=max(0.0, wake - time.monotonic()))
                    if not done:
                        await self._check_requests()
                        if time.monotonic() < quiet_at:
                            continue
                        quiet_periods += 1
                        if quiet_periods >= 2:
                            raise PrinterUnreachable(
                                f"printer {self.cfg.name}: no report for {2 * self.silence_timeout:g} s")
                        # Some firmware stops reporting on a live connection: ask, then reconnect
                        # (a printer that refuses requests is not asked: it would only refuse).
                        if not self.watch.refused:
                            await self.request_pushall()
                        continue
                    message, waiting, quiet_periods = waiting.result(), None, 0
                    last_report = time.monotonic()
                    payload = decode_payload(message.payload, self.once, self.on_bad_report)  # type: ignore[arg-type]
                    if payload is None:
                        continue
                    self.backoff.reset()  # a report arrived: this connection works
                    self.watch.saw(payload)
                    await self._check_requests()
                    if refusal(payload) is not None:
                        continue  # the answer is the link's business; it carries no state
                    await on_message(payload)
            finally:
                if waiting is not None:
                    waiting.cancel()
