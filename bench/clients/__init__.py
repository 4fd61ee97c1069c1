"""The programs whose costs are measured, each run as its own process by the driver."""
