"""Every error the billing package raises. Each message is fit to show a person unless said otherwise."""

from __future__ import annotations


class AttentionError(ValueError):
    """An action that cannot be done as asked; the message is fit to show a person."""


class NothingToDo(LookupError):
    """No entry matches (unknown job, or someone settled them meanwhile)."""


class CorrectionError(ValueError):
    """A correction that cannot be made as asked; the message is fit to show a person."""


class CorrectionConflict(CorrectionError):
    """The ledger or Spoolman says no (nothing to move, the refund would floor the spool)."""


class UnknownJob(LookupError):
    pass


class UnknownSpool(LookupError):
    pass


class LedgerConflict(RuntimeError):
    """The entries changed under the outbox (another writer); nothing was sent."""
