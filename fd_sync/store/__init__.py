"""The ledger: incidents as last acted on, the outbox, state, run history, the run lock."""
