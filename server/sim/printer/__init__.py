"""A virtual Bambu Lab printer: MQTT over TLS and implicit FTPS, scripted from tests or `layerwise simulate`."""

from server.sim.printer.model import AmsUnit, Tray
from server.sim.printer.printer import VirtualPrinter

__all__ = ["AmsUnit", "Tray", "VirtualPrinter"]
