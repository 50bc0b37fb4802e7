"""Billing: the rules that turn layers into bill lines, the ledger, settlement, the outbox to Spoolman,
corrections and what needs a person's attention."""
