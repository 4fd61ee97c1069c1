"""``fd-sync run``: the scheduler loop, systemd notify, Prometheus metrics."""
