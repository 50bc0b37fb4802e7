"""What a part of a job has used: what Spoolman has (delivered) plus what is on its way (pending)."""

from __future__ import annotations


class UsedAmounts:
    """Mixin for the dataclasses that report a job's use per spool (the job list, the job page)."""

    mm_delivered: float
    grams_delivered: float
    mm_pending: float
    grams_pending: float

    @property
    def mm(self) -> float:
        return self.mm_delivered + self.mm_pending

    @property
    def grams(self) -> float:
        return self.grams_delivered + self.grams_pending
