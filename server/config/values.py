"""What a single setting's value must be: the validators the settings models share (URLs, host names,
ports, secrets, files, the database URL). Messages are only the fault; see ``server.config.models``."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr
from pydantic_core import PydanticCustomError

from server.logs import register_secret

_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


def fault(text: str) -> PydanticCustomError:
    """A validation error whose message is only the fault; the loader appends what is expected."""
    return PydanticCustomError("layerwise", text)


def shown(value: Any) -> str:
    """A value as a message quotes it: text in quotes, numbers and the rest bare."""
    return repr(value) if isinstance(value, str) else str(value)


def http_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fault(f"is {shown(value)}, not a URL")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fault(f"{value!r} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        raise fault(f"{value!r} has an invalid port") from None
    if parts.password:
        register_secret(parts.password)  # http://user:password@spoolman behind a proxy
    if parts.query or parts.fragment:
        raise fault(f"{value!r} has a query or fragment")
    return value.strip().rstrip("/")


def allowed_host(item: str) -> str:
    entry = item.strip().lower().rstrip(".")
    if entry.startswith("[") and entry.endswith("]"):
        entry = entry[1:-1]  # [fe80::1] as in a URL
    try:
        return str(ipaddress.ip_network(entry, strict=False)) if "/" in entry else str(ipaddress.ip_address(entry))
    except ValueError:
        if "/" in entry or ":" in entry or not HOSTNAME.match(entry):
            raise fault(f"{item!r} is neither a host name, an IP address nor a network") from None
    return entry


def secret_text(value: Any) -> str:
    """An access code or API key: printable ASCII without spaces, registered for redaction first.
    Messages never quote the value: it is a secret even when it is wrong."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise fault("is not text")
    register_secret(value)
    if not value.isascii() or not value.isprintable() or " " in value:
        raise fault("has characters other than letters, digits and punctuation")
    return value


def tcp_port(value: Any) -> Any:
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip().isdigit():
        number = int(value)
        if not 1 <= number <= 65535:
            raise fault(f"is {number}")
        return number
    raise fault(f"is {shown(value)}")


def readable_file(value: Any) -> Any:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise fault(f"'{path}' does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise fault(f"'{path}' is not readable")
    return path


def database_url(value: Any) -> SecretStr | None:
    """A PostgreSQL URL, normalised to the psycopg 3 driver; never quoted in messages (it holds a password)."""
    if value is None:
        return None
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise fault("is not text")
    url = value.strip()
    if not url:
        return None  # empty: SQLite, the default
    parts = urlsplit(url)
    if parts.password:
        register_secret(parts.password)
        register_secret(unquote(parts.password))
    if parts.scheme not in POSTGRES_SCHEMES:
        raise fault(f"starts with {parts.scheme or '(no scheme)'}://, not postgresql+psycopg:// "
                     "(leave it unset for SQLite, the default)")
    return SecretStr("postgresql+psycopg" + url[len(parts.scheme):])


POSTGRES_SCHEMES = ("postgresql+psycopg", "postgresql", "postgres")
