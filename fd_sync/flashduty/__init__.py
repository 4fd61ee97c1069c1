"""The write side: Flashduty's push endpoints and its OpenAPI."""
