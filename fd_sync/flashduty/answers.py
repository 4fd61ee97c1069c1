"""What Flashduty's answers mean, without the HTTP client: ``status`` reads the ledger's
dead events with this and must start without importing requests (issue 24)."""

from __future__ import annotations

# standard alert.mdx, "Failed Response": a wrong integration_key is answered with HTTP 400
# InvalidParameter and this message. It is the only documented signal that tells a rejected
# key from a body Flashduty merely found incomplete, so it is matched narrowly.
KEY_REJECTED_MESSAGE = "integration_key is not a valid one"


def key_rejected(status: int | None, code: str | None, message: str | None) -> bool:
    """Whether Flashduty refused the push URL's key or token (not the body)."""
    if status in (401, 403):
        return True
    return status == 400 and code == "InvalidParameter" and KEY_REJECTED_MESSAGE in (message or "")


__all__ = ["KEY_REJECTED_MESSAGE", "key_rejected"]
