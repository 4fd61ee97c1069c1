"""Operator commands over the library: check, dispatch, explain, status, demo."""
