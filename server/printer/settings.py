"""The shape of a printer's configuration as the adapters read it.

``server.config.PrinterConfig`` (a frozen pydantic model) satisfies this protocol; tests may pass any object
with these attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import SecretStr

TLSMode = Literal["verify", "pin", "insecure"]


class PrinterSettings(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def serial(self) -> str: ...
    @property
    def access_code(self) -> SecretStr: ...
    @property
    def mqtt_port(self) -> int: ...
    @property
    def ftps_port(self) -> int: ...
    @property
    def tls(self) -> TLSMode: ...
    @property
    def ca_file(self) -> Path | None: ...
