"""The URLs a configuration holds: which are valid, which parts are secrets."""

from __future__ import annotations

import re
import urllib.parse

from fd_sync.core.routing import PushFormat

PUSH_URL_HELP = (
    "must be a Flashduty push URL: https://api.flashcat.cloud/event/push/servicenow/<token> "
    "or https://api.flashcat.cloud/event/push/alert/standard?integration_key=<key>"
)
_SERVICENOW_PATH = re.compile(r"/event/push/servicenow/([^/]+)/?")


def push_format(url: str) -> PushFormat | None:
    """Which body a push URL expects, decided by its path; None when it is neither."""
    parsed = urllib.parse.urlsplit(url)
    if _SERVICENOW_PATH.fullmatch(parsed.path):
        return "servicenow"
    query = urllib.parse.parse_qs(parsed.query)
    if parsed.path.rstrip("/") == "/event/push/alert/standard" and query.get("integration_key"):
        return "standard"
    return None


def check_push_url(url: str) -> tuple[PushFormat | None, str | None]:
    """The push format of a valid push URL, and a warning for plain http://.

    One rule for ``[flashduty] push_url`` and every ``[[route]]``: (None, None)
    means the URL is not a Flashduty push URL (the caller names the key)."""
    parsed = urllib.parse.urlsplit(url)
    fmt = push_format(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname or fmt is None:
        return None, None
    warning = (
        "uses http://: the integration key travels unencrypted" if parsed.scheme == "http" else None
    )
    return fmt, warning


def push_url_secrets(url: str) -> list[str]:
    """The parts of a push URL that let anyone page the company: the whole URL and its key."""
    if not url:
        return []
    parsed = urllib.parse.urlsplit(url)
    found = [url]
    match = _SERVICENOW_PATH.fullmatch(parsed.path)
    if match:
        found.append(match.group(1))
    found.extend(urllib.parse.parse_qs(parsed.query).get("integration_key", []))
    return found


def proxy_secrets(proxy: str | None) -> list[str]:
    """The password in a proxy URL such as http://user:pass@proxy:3128, and the URL itself."""
    if not proxy:
        return []
    parsed = urllib.parse.urlsplit(proxy)
    return [proxy, parsed.password] if parsed.password else []
