"""One-shot checks of a printer's MQTT and FTPS for ``layerwise check``: log in, one round trip, a clear
sentence either way ("access code refused", "certificate CN is X, expected serial Y", "connection refused",
"timed out")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass

import aiomqtt

from server.config import PrinterConfig
from server.printer.errors import BadReport, PrinterAuthError, PrinterError, PrinterTLSError, PrinterUnreachable
from server.printer.ftps import ftps_session
from server.printer.link import (
    GET_VERSION,
    PUSHALL,
    USERNAME,
    decode_report,
    mqtt_client,
    mqtt_error,
    report_topic,
    request_topic,
)
from server.printer.refusals import RequestWatch
from server.printer.tls import PinStore


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


def _tls_note(cfg: PrinterConfig) -> str:
    return {"verify": "TLS verified, CN = serial", "pin": "TLS certificate pinned",
            "insecure": "TLS NOT verified (tls = insecure)"}[cfg.tls]


def _failure(cfg: PrinterConfig, error: PrinterError) -> ProbeResult:
    """The adapter's message without the leading ``printer <name>:`` (check prints the subject itself)."""
    text = str(error).removeprefix(f"printer {cfg.name}: ")
    if isinstance(error, PrinterAuthError):
        text = "access code refused"
    return ProbeResult(False, text)


async def probe_mqtt(cfg: PrinterConfig, pins: PinStore | None, timeout: float = 10.0,
                     answer_timeout: float = 8.0) -> ProbeResult:
    """Log in, subscribe, ask ``get_version`` and ``pushall`` and wait for any report, then for both
    answers: a printer that refuses them (authorization control) or ignores them works, limited, and
    the line says so, with the fix."""
    watch = RequestWatch()
    try:
        async with mqtt_client(cfg, pins, identifier=f"layerwise-check-{uuid.uuid4().hex[:8]}",
                               timeout=timeout) as client:
            await client.subscribe(report_topic(cfg.serial))
            now = time.monotonic()
            for request, payload in (("get_version", GET_VERSION), ("pushall", PUSHALL)):
                watch.sent(request, now)
                await client.publish(request_topic(cfg.serial), json.dumps(payload), qos=1)
            reported = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    async for message in client.messages:
                        reported = True
                        with contextlib.suppress(BadReport):
                            watch.saw(decode_report(message.payload))  # type: ignore[arg-type]
                        if not watch.pending or time.monotonic() - now >= answer_timeout:
                            break
            if not reported:
                raise TimeoutError
            watch.expire(time.monotonic() + answer_timeout, answer_timeout)  # what is left went unanswered
        note = f"; {watch.limited}" if watch.limited else ""
        return ProbeResult(True, f"logged in as {USERNAME}, printer answered, {_tls_note(cfg)}{note}")
    except TimeoutError:
        return ProbeResult(False, f"logged in, but no report within {timeout:g} s (is the serial right?)")
    except (aiomqtt.MqttError, PrinterError) as exc:
        return _failure(cfg, mqtt_error(cfg, exc))
    except OSError as exc:
        return _failure(cfg, PrinterUnreachable(str(exc)))


def _probe_ftps_blocking(cfg: PrinterConfig, pins: PinStore | None, timeout: float) -> ProbeResult:
    with ftps_session(cfg, pins, timeout=timeout) as ftp:
        entries = len(ftp.nlst("/"))
    return ProbeResult(True, f"logged in as {USERNAME}, {entries} entries in /, {_tls_note(cfg)}")


async def probe_ftps(cfg: PrinterConfig, pins: PinStore | None, timeout: float = 10.0) -> ProbeResult:
    """Log in over implicit FTPS and list ``/`` (one data connection, so TLS session reuse is exercised)."""
    try:
        return await asyncio.to_thread(_probe_ftps_blocking, cfg, pins, timeout)
    except (PrinterError, PrinterTLSError) as exc:
        return _failure(cfg, exc)
