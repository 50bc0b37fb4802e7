"""``python -m bench.mutation``: a mutation score for the billing core (issue 16)."""
