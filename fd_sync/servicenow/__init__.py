"""The read side: the ServiceNow Table API client, keyset scans, batched look-ups."""
