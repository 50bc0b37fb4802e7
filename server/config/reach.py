"""Settings for speaking up: ``[notifications]`` (Apprise) and ``[home_assistant]`` (MQTT discovery).

Apprise URLs and the broker's password carry credentials (tokens in the path, passwords in the
netloc): they are ``SecretStr``, registered for redaction, and shown only as their scheme
(``masked_url``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from server.config.models import Section
from server.config.values import fault, readable_file, shown
from server.logs import register_secret

NOTIFY_EVENTS = (
    "runout", "job_finished", "job_failed", "job_cancelled", "low_stock", "attention", "printer_offline",
    "spoolman_unreachable",
)  # fmt: skip
_EVENTS_EXPECTED = f"a list out of {', '.join(NOTIFY_EVENTS)}"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
MQTT_SCHEMES = ("mqtt", "mqtts")
_TOPIC = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


def masked_url(url: str) -> str:
    """``ntfy://…`` for ``ntfy://ntfy.sh/secret-topic``: enough to tell targets apart, nothing to steal."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep else "…"


def _names(value: Any) -> Any:
    if isinstance(value, str):  # LAYERWISE_NOTIFICATIONS_EVENTS=runout,job_failed
        value = [item for item in re.split(r"[\s,]+", value) if item]
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise fault(f"is {shown(value)}, not a list of names")
    return tuple(item.strip() for item in value)


def _events(value: Any) -> tuple[str, ...]:
    names = _names(value)
    unknown = [name for name in names if name not in NOTIFY_EVENTS]
    if unknown:
        raise fault(f"has {', '.join(repr(name) for name in unknown)}")
    return names


def _at_least_zero(value: float) -> float:
    if value < 0:
        raise fault(f"is {value}")
    return value


class NotificationsConfig(Section):
    urls: tuple[SecretStr, ...] = Field(
        (), description="Apprise URLs such as ntfy://ntfy.sh/my-topic or tgram://TOKEN/CHAT (secrets)"
    )
    events: tuple[str, ...] = Field(NOTIFY_EVENTS, description=_EVENTS_EXPECTED)
    printers: tuple[str, ...] = Field((), description="printer names to tell about (empty: every printer)")
    # printer name -> the events for that printer, replacing ``events`` for it (TOML only).
    printer_events: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description='a table of printer name = [events], such as { "X1C" = ["runout"] }'
    )
    runout_within_layers: int = Field(
        10, description="a number of layers 0 or more: warn again when the runout is this close (0: never)"
    )
    low_stock_g: float = Field(100.0, description="grams 0 or more: a spool dropping below this is low (0: never)")
    printer_offline_minutes: float = Field(10.0, description="minutes 0 or more")
    spoolman_unreachable_minutes: float = Field(10.0, description="minutes 0 or more")

    @field_validator("urls", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):  # LAYERWISE_NOTIFICATIONS_URLS or a file: separated by spaces or commas
            value = [item for item in re.split(r"[\s,]+", value) if item]
        if not isinstance(value, list | tuple):
            raise fault("is not a list of URLs")
        urls = []
        for position, item in enumerate(value, start=1):
            text = item.get_secret_value() if isinstance(item, SecretStr) else item
            if not isinstance(text, str):
                raise fault(f"element {position} is not text")
            register_secret(text.strip())
            if not _URL.match(text.strip()):
                raise fault(f"element {position} ({masked_url(text)}) is not an Apprise URL (scheme://...)")
            urls.append(text.strip())
        return tuple(urls)

    @field_validator("events", mode="before")
    @classmethod
    def _events(cls, value: Any) -> Any:
        return _events(value)

    @field_validator("printers", mode="before")
    @classmethod
    def _printers(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("printer_events", mode="before")
    @classmethod
    def _printer_events(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise fault(f"is {shown(value)}, not a table")
        return {str(name): _events(events) for name, events in value.items()}

    @field_validator("runout_within_layers", "low_stock_g", "printer_offline_minutes",
                     "spoolman_unreachable_minutes", mode="after")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        return _at_least_zero(value)

    def wants(self, event: str, printer: str | None) -> bool:
        """Whether ``event`` about ``printer`` (None: not about one printer) is to be sent."""
        if printer is not None and self.printers and printer not in self.printers:
            return False
        events = self.printer_events.get(printer, self.events) if printer is not None else self.events
        return event in events


class HomeAssistantConfig(Section):
    mqtt_url: str | None = Field(
        None, description="the broker's URL, mqtt://host:1883 or mqtts://host:8883 (TLS)"
    )
    username: str | None = Field(None, description="the broker's user name")
    password: SecretStr | None = Field(None, description="the broker's password")
    ca_file: Path | None = Field(None, description="a readable PEM file of CA certificates for mqtts://")
    tls_insecure: bool = Field(False, description="true or false (true: accept any broker certificate)")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix")
    topic_prefix: str = Field("layerwise", description="the topic Layerwise's states live under")

    @field_validator("mqtt_url", mode="before")
    @classmethod
    def _mqtt_url(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise fault(f"is {shown(value)}, not a URL")
        parts = urlsplit(value.strip())
        if parts.password:
            register_secret(parts.password)
        if parts.scheme not in MQTT_SCHEMES or not parts.hostname:
            raise fault(f"{parts.scheme or 'it'}://… is not an mqtt:// or mqtts:// URL")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number or out of range
        except ValueError:
            raise fault("has an invalid port") from None
        return value.strip()

    @field_validator("password", mode="before")
    @classmethod
    def _password(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str) or value == "":
            raise fault("is empty or not text")
        register_secret(value)
        return value

    @field_validator("ca_file", mode="before")
    @classmethod
    def _ca_file(cls, value: Any) -> Any:
        return readable_file(value)

    @field_validator("discovery_prefix", "topic_prefix", mode="before")
    @classmethod
    def _topic(cls, value: Any) -> Any:
        if not isinstance(value, str) or not _TOPIC.match(value.strip().strip("/")):
            raise fault(f"is {shown(value)}")
        return value.strip().strip("/")

    def broker(self) -> tuple[str, int, bool, str | None, str | None]:
        """(host, port, tls, username, password): the URL's credentials unless set on their own."""
        assert self.mqtt_url is not None
        parts = urlsplit(self.mqtt_url)
        tls = parts.scheme == "mqtts"
        password = self.password.get_secret_value() if self.password is not None else parts.password
        port = parts.port or (8883 if tls else 1883)
        return parts.hostname or "", port, tls, self.username or parts.username, password

    def shown_url(self) -> str:
        """The broker's URL without credentials, for ``layerwise check`` and logs."""
        host, port, tls, _, _ = self.broker()
        return f"{'mqtts' if tls else 'mqtt'}://{host}:{port}"
