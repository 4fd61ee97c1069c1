"""A cycle: plan a page (ledger, routes, decisions, look-ups), commit it, deliver."""
