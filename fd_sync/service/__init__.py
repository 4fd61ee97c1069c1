"""``fd-sync run``: the scheduler loop (daemon), its record and back-off (lifecycle),
leadership on a shared ledger, the watchdog, systemd notify, Prometheus metrics."""
