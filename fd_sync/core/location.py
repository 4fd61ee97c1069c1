"""Where the ledger lives: a SQLite file (a :class:`~pathlib.Path`) or a PostgreSQL database.

A PostgreSQL URL is split once, here, into what may be shown and what may not: the
password never travels inside the URL that commands print, log or compare.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

SCHEMES = ("postgresql", "postgres")
PSYCOPG_MISSING = "a postgresql:// ledger needs the psycopg driver: pip install 'fd-sync[postgres]'"
_SECRET_PARAMETERS = {"password", "sslpassword"}


@dataclass(frozen=True)
class PostgresLedger:
    """A ledger in PostgreSQL: the URL without its password, and the password apart."""

    url: str  # libpq URL with no password in it (not in the authority, not in the query)
    password: str | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return self.url

    @property
    def host(self) -> str:
        """The server, as an error message names it."""
        parts = urllib.parse.urlsplit(self.url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        host = parts.hostname or query.get("host") or "the local socket"
        port = parts.port or query.get("port")
        return f"{host}:{port}" if port else host


LedgerLocation = Path | PostgresLedger


def is_postgres_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme in SCHEMES


_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):/")


def unsupported_scheme(text: str) -> str | None:
    """What a ledger location that looks like a URL but not a PostgreSQL one is wrong with
    (None: a path, or a postgresql:// URL). Taken as a path, ``postgresq://...`` or
    ``sqlite:///...`` would silently become a new file named like a URL: in HA, a second,
    private ledger and a second leader paging twice. The text never quotes the location
    (a URL may carry a password)."""
    match = _URL_SCHEME.match(text)
    if match is None or match.group(1).lower() in SCHEMES:
        return None
    return (
        f"{match.group(1)}:// is not a ledger fd-sync can use: give a SQLite file path "
        "(such as /var/lib/fd-sync/fd-sync.db) or a postgresql:// URL (postgres:// works too)"
    )


def split_postgres_url(text: str) -> tuple[str, str | None]:
    """The URL without any password, and the password it carried (None: none).
    Raises ValueError for a URL libpq would not understand either."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in SCHEMES:
        raise ValueError("must start with postgresql://")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("its port is not a number") from None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username is not None:
        netloc = f"{parts.username}@{netloc}"
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k not in _SECRET_PARAMETERS]
    for key, value in query:
        if key == "password":
            password = value
    if not parts.path.strip("/") and not any(k == "dbname" for k, _ in kept):
        raise ValueError("names no database: add it, as in postgresql://fdsync@host/fdsync")
    clean = urllib.parse.urlunsplit(
        ("postgresql", netloc, parts.path, urllib.parse.urlencode(kept), "")
    )
    return clean, password
