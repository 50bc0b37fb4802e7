"""Pure decisions of the ledger: an entry's state at billing time, and how a delivery whose
outcome is unknown is settled.

Spoolman's ``PUT /spool/{id}/use`` is not idempotent (``used_weight += w``), so a request
that may have been applied must never simply be repeated. Before each request the outbox
records the spool's ``used_weight`` and ``last_used`` (read fresh) and the weight the
request will add; after a crash or a lost answer it reads the spool again and
:func:`settle` compares. One request per spool is in flight at a time, so the
difference can only be ours, unless someone else changed the spool meanwhile: that case
is flagged, never guessed silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Ledger entry states. An entry moves forward only; ``sending`` goes back to ``ready``
# only when settlement proves the request was not applied.
WAITING_TRAY = "waiting_tray"  # the filament's tray is not known yet (mapping learned during the print)
WAITING_SPOOL = "waiting_spool"  # tray known, no spool assigned to it
READY = "ready"  # spool resolved; queued for the outbox
SENDING = "sending"  # written before the request leaves; outcome unknown until answered or settled
DELIVERED = "delivered"
REJECTED = "rejected"  # Spoolman refused it (e.g. the spool was deleted): visible, can be re-pointed
DOUBTFUL = "doubtful"  # settlement could not tell; counted as applied (never billed twice), flagged

ENTRY_STATES = (WAITING_TRAY, WAITING_SPOOL, READY, SENDING, DELIVERED, REJECTED, DOUBTFUL)
PENDING_STATES = (WAITING_TRAY, WAITING_SPOOL, READY, SENDING)
APPLIED_STATES = (DELIVERED, DOUBTFUL)

UNMAPPED_TRAYS = frozenset({-1, 65535})  # ams_mapping's "not used" markers

# Spoolman keeps ``used_weight`` as a double: a sum of a few thousand additions drifts by
# far less than this, while the smallest useful bill (0.01 mm of 1.75 mm PLA ≈ 3e-5 g)
# stays well above it.
ABS_TOLERANCE_G = 1e-6
REL_TOLERANCE = 1e-9

# Seconds Spoolman may still need to apply a request after our client gave up on it.
SETTLE_MARGIN = 5.0


def initial_state(tray: int | None, spool_id: int | None) -> str:
    """The state of a new ledger entry from what is known when its layer is billed."""
    if tray is None or tray in UNMAPPED_TRAYS:
        return WAITING_TRAY
    if spool_id is None:
        return WAITING_SPOOL
    return READY


def resolve_tray(mapping: dict[int, int], filament_index: int) -> int | None:
    """The global tray of a slicer filament, ``None`` while unknown or unmapped."""
    tray = mapping.get(filament_index)
    if tray is None or tray in UNMAPPED_TRAYS:
        return None
    return tray


CARRY_NOTE = "net retraction carried to the next bill"


def carry_forward(used_weight: float, expected_g: float) -> bool:
    """Whether a spool's batch must wait for its next positive bill instead of being sent now.

    A negative net (retractions) larger than what the spool has used would be floored at 0 by
    Spoolman and partly vanish; joined to the next positive bill it is counted in full. A negative
    net the spool can absorb goes out as is.
    """
    return expected_g < 0 and used_weight + expected_g < -ABS_TOLERANCE_G


def settle_grace(client_timeout: float) -> float:
    """Seconds after a request was recorded before its unknown outcome may be settled.

    httpx applies the timeout to each phase (waiting for a pooled connection, connecting, writing,
    reading), so a request may still be written up to three timeouts after it was recorded; reading
    the spool before it lands would call it "not applied" and send it again.
    """
    return 3 * client_timeout + SETTLE_MARGIN


@dataclass(frozen=True)
class SpoolReading:
    """What settlement needs from a ``GET /spool/{id}``."""

    used_weight: float
    last_used: str | None


class Outcome(StrEnum):
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"
    DOUBTFUL = "doubtful"


@dataclass(frozen=True)
class Settlement:
    outcome: Outcome
    reason: str


def tolerance(*weights: float) -> float:
    return ABS_TOLERANCE_G + REL_TOLERANCE * max((abs(w) for w in weights), default=0.0)


def settle(before: SpoolReading, expected_g: float, after: SpoolReading) -> Settlement:
    """Was a ``use`` of ``expected_g`` grams applied between the two readings?

    - moved by the expected weight → applied;
    - not moved and ``last_used`` unchanged → not applied (safe to send again);
    - anything else means someone else used or edited the spool meanwhile. Then we cannot
      know; the conservative answer is "doubtful", which the ledger counts as applied
      (a bill is never sent twice) and shows for a person to confirm or re-queue.
    """
    # Spoolman floors used_weight at 0, so a negative use may move it by less than asked.
    target = max(before.used_weight + expected_g, 0.0)
    at_stake = target - before.used_weight
    moved = after.used_weight - before.used_weight
    tol = tolerance(before.used_weight, after.used_weight, expected_g)
    if abs(at_stake) <= tol:
        return Settlement(Outcome.APPLIED, f"{at_stake:.3g} g is below what a reading can tell; counted")
    if abs(after.used_weight - target) <= tol:
        return Settlement(Outcome.APPLIED, f"used_weight moved by {moved:.6f} g as expected")
    if abs(moved) <= tol and after.last_used == before.last_used:
        return Settlement(Outcome.NOT_APPLIED, "used_weight and last_used unchanged")
    return Settlement(
        Outcome.DOUBTFUL,
        f"used_weight moved by {moved:.6f} g, expected {at_stake:.6f} g or 0: "
        "the spool was changed outside Layerwise meanwhile",
    )
