"""fd-sync: mirror ServiceNow incidents into Flashduty alerts, polling from outside."""

__version__ = "0.1.0"
