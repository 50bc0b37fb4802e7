"""The job lifecycle: the state machine, its checkpoint and store, the tracker fed by printer reports,
mapping learning, tray switches and the remaining-percent fallback."""
