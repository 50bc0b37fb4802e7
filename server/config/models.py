"""The settings models: what each value must be, checked by pydantic when a model is built.

Messages from the validators are only the fault (``is 6 characters``); ``server.config.problems``
puts the key as the user wrote it in front and the field's ``description`` (what is expected)
behind. Access codes are ``SecretStr`` and are never quoted in a message.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from server.config.values import (
    HOSTNAME,
    allowed_host,
    database_url,
    fault,
    http_url,
    readable_file,
    secret_text,
    shown,
    tcp_port,
)
from server.logs import LOG_LEVELS

TLS_MODES = ("verify", "pin", "insecure")
ACCESS_CODE_LENGTH = 8

_SERIAL = re.compile(r"^[A-Za-z0-9]{1,32}$")
_EXTRA_FIELD_KEY = re.compile(r"^[a-z0-9_]{1,64}$")


class Section(BaseModel):
    # extra="forbid" backs up the loader's own unknown-key check for code that builds models directly;
    # hide_input_in_errors keeps a wrong access code out of a ValidationError's text and tracebacks.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class ServerConfig(Section):
    host: str = Field("0.0.0.0", description="an address to listen on, such as 0.0.0.0 or 127.0.0.1")
    port: int = Field(7913, description="a TCP port number 1-65535")
    https_port: int = Field(
        7914, description="a TCP port number 1-65535 for Layerwise's own HTTPS, or 0 (or off) for none"
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("layerwise")),
        description="a directory for Layerwise's database (created if missing)",
    )
    log_level: str = Field("INFO", description=f"one of {', '.join(LOG_LEVELS)}")
    tls_certfile: Path | None = Field(
        None, description="a readable PEM certificate file, together with tls_keyfile, to serve HTTPS"
    )
    tls_keyfile: Path | None = Field(
        None, description="a readable PEM private key file, together with tls_certfile, to serve HTTPS"
    )
    base_url: str | None = Field(
        None, description="the http(s) URL the web app is reached at, such as https://layerwise.example.net"
    )
    allowed_hosts: tuple[str, ...] = Field(
        (), description="host names, IP addresses or networks (192.168.1.0/24) the web app may be reached at"
    )
    database_url: SecretStr | None = Field(
        None, description="a PostgreSQL URL, postgresql+psycopg://user:password@host/database (unset: SQLite)"
    )

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise fault("is empty")
        return value

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        return tcp_port(value)

    @field_validator("https_port", mode="before")
    @classmethod
    def _https_port(cls, value: Any) -> Any:
        if value is False or (isinstance(value, int | str) and str(value).strip().lower() in ("0", "off", "false")):
            return 0
        return tcp_port(value)

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise fault("is empty")
        if isinstance(value, str | Path):
            path = Path(value).expanduser()
            if path.exists() and not path.is_dir():
                raise fault(f"'{path}' exists and is not a directory")
            return path
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if not isinstance(value, str) or value.strip().upper() not in LOG_LEVELS:
            raise fault(f"is {shown(value)}")
        return value.strip().upper()

    @field_validator("tls_certfile", "tls_keyfile", mode="before")
    @classmethod
    def _tls_files(cls, value: Any) -> Any:
        return readable_file(value)

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url(cls, value: Any) -> Any:
        return http_url(value)

    def database_url_text(self) -> str | None:
        """The PostgreSQL URL to connect with, or None for SQLite (only the database layer sees it)."""
        return self.database_url.get_secret_value() if self.database_url is not None else None

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> Any:
        return database_url(value)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _allowed_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):  # LAYERWISE_ALLOWED_HOSTS=a.lan,192.168.1.0/24
            value = [item for item in re.split(r"[\s,]+", value) if item]
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
            raise fault(f"is {shown(value)}, not a list of names")
        return tuple(allowed_host(item) for item in value)


class SpoolmanConfig(Section):
    url: str | None = Field(None, description="Spoolman's base URL, such as http://spoolman:7912")
    timeout: float = Field(10.0, description="a number of seconds greater than 0")
    api_key: SecretStr | None = Field(
        None, description="the API key sent as 'Authorization: Bearer' (Spoolman behind an authenticating proxy)"
    )

    @field_validator("api_key", mode="before")
    @classmethod
    def _api_key(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = value.strip()  # a file's or variable's trailing newline
        if value == "":
            raise fault("is empty")
        return secret_text(value)

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        url = http_url(value)
        # People paste the API root from Spoolman's docs; the client adds it itself.
        if url and url.endswith("/api/v1"):
            url = url.removesuffix("/api/v1")
        return url

    @field_validator("timeout", mode="after")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not value > 0:
            raise fault(f"is {value}")
        return value


class RfidConfig(Section):
    extra_field: str = Field(
        "bambu_tray_uuid",
        description="a Spoolman extra field key: lowercase letters, digits and underscores",
    )
    create_spools: bool = Field(False, description="true or false")
    auto_assign: bool = Field(True, description="true or false")

    @field_validator("extra_field", mode="before")
    @classmethod
    def _extra_field(cls, value: Any) -> Any:
        if not isinstance(value, str) or not _EXTRA_FIELD_KEY.match(value):
            raise fault(f"is {shown(value)}")
        return value


class AuthConfig(Section):
    required: bool = Field(True, description="true or false (false lets anyone on the network in)")
    trusted_networks: tuple[str, ...] = Field(
        (), description='a list of networks whose visitors skip the sign-in, such as ["192.168.1.0/24"]'
    )

    @field_validator("trusted_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):  # LAYERWISE_AUTH_TRUSTED_NETWORKS=192.168.1.0/24,10.0.0.5
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise fault(f"is {shown(value)}")
        for network in value:
            try:
                ipaddress.ip_network(network.strip(), strict=False)
            except ValueError:
                raise fault(f"{network!r} is not a network") from None
        return tuple(network.strip() for network in value)


class PrinterConfig(Section):
    name: str = Field(description="a unique, non-empty printer name")
    host: str = Field(description="the printer's IP address or host name, without scheme or port")
    serial: str = Field(
        description="the printer's serial number: letters and digits, as on the printer or in Bambu Studio"
    )
    access_code: SecretStr = Field(description="the printer's 8-character LAN access code")
    mqtt_port: int = Field(8883, description="a TCP port number 1-65535 (the printer's MQTT port is 8883)")
    ftps_port: int = Field(990, description="a TCP port number 1-65535 (the printer's FTPS port is 990)")
    tls: Literal["verify", "pin", "insecure"] = Field(
        "verify", description="one of 'verify', 'pin', 'insecure'"
    )
    model: str | None = Field(None, description="a printer model such as X1C, P1S, A1 or H2D")
    ca_file: Path | None = Field(
        None, description="a readable PEM file of extra CA certificates to trust for this printer"
    )

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                raise fault("is empty")
            return value.strip()
        return value

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        host = value.strip()
        if not host:
            raise fault("is empty")
        if "://" in host or "/" in host:
            raise fault(f"{host!r} looks like a URL")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not HOSTNAME.match(host):
                raise fault(f"{host!r} is neither an IP address nor a host name") from None
        return host

    @field_validator("serial", mode="before")
    @classmethod
    def _serial(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            serial = value.strip()
            if not serial:
                raise fault("is empty")
            if not _SERIAL.match(serial):
                raise fault(f"{serial!r} has characters other than letters and digits or is too long")
            return serial
        return value

    @field_validator("access_code", mode="before")
    @classmethod
    def _access_code(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # `access_code = 12345678` without quotes in TOML
        code = secret_text(value)
        if len(code) != ACCESS_CODE_LENGTH:
            raise fault(f"is {len(code)} characters")
        return code

    @field_validator("mqtt_port", "ftps_port", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        return tcp_port(value)

    @field_validator("tls", mode="before")
    @classmethod
    def _tls(cls, value: Any) -> Any:
        if not isinstance(value, str) or value.strip().lower() not in TLS_MODES:
            raise fault(f"is {shown(value)}")
        return value.strip().lower()

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("ca_file", mode="before")
    @classmethod
    def _ca_file(cls, value: Any) -> Any:
        return readable_file(value)


from server.config.reach import HomeAssistantConfig, NotificationsConfig  # noqa: E402 - it builds on Section


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    server: ServerConfig = Field(default_factory=ServerConfig)
    spoolman: SpoolmanConfig = Field(default_factory=SpoolmanConfig)
    rfid: RfidConfig = Field(default_factory=RfidConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    home_assistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    printers: tuple[PrinterConfig, ...] = ()
    # printer name -> {global tray index: Spoolman spool id}; seeds slot assignments once.
    seed_mappings: dict[str, dict[int, int]] = Field(default_factory=dict)
    # printer name -> where its seed came from ("printers[0].ams_mappings", "LAYERWISE_AMS_MAPPINGS"), for the log.
    seed_sources: dict[str, str] = Field(default_factory=dict)
    config_file: Path | None = None
    # Problems that do not stop the start (a LAYERWISE_ variable nobody reads): logged once at start.
    warnings: tuple[str, ...] = ()
    # True for `layerwise demo` (a virtual printer and a Spoolman stand-in): pages say so.
    demo: bool = False

    def printer(self, name: str) -> PrinterConfig:
        for printer in self.printers:
            if printer.name == name:
                return printer
        raise KeyError(name)
