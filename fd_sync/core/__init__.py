"""Pure decision logic: no I/O, no clock. Imports nothing of fd_sync but ``errors``."""
