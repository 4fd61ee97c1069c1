"""OAuth for the Table API: ``/oauth_token.do`` grants, refreshed before they expire.

The password grant when a username is configured, else client_credentials; a
refresh token is used first when ServiceNow gave one. Tokens are registered
for redaction the moment they arrive.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import requests

from fd_sync import redaction
from fd_sync.config import ServiceNowConfig
from fd_sync.errors import APIError, FatalAPIError, FdSyncError, RetriableAPIError
from fd_sync.http.transport import exchange

TOKEN_MARGIN_SECONDS = 60.0  # refresh OAuth tokens this long before they expire


class OAuthTokens:
    def __init__(
        self, config: ServiceNowConfig, session: requests.Session, clock: Callable[[], float]
    ) -> None:
        self.config = config
        self.session = session
        self.clock = clock
        self._token: str | None = None
        self._refresh_token: str | None = None
        self._token_expires = 0.0

    def forget(self) -> bool:
        """Drop the cached token (ServiceNow refused it); whether there was one."""
        had, self._token = self._token is not None, None
        return had

    def access_token(self) -> str:
        """A valid token: the cached one, a refreshed one, or a new grant."""
        if self._token and self.clock() < self._token_expires:
            return self._token
        data: dict[str, str] = {
            "client_id": self.config.client_id or "",
            "client_secret": self.config.client_secret or "",
        }
        if self._refresh_token:
            data.update(grant_type="refresh_token", refresh_token=self._refresh_token)
            try:
                return self._fetch(data)
            except (APIError, FdSyncError):
                self._refresh_token = None  # fall back to a full grant below
                del data["refresh_token"]
        if self.config.username:
            data.update(
                grant_type="password",
                username=self.config.username,
                password=self.config.password or "",
            )
        else:
            data.update(grant_type="client_credentials")
        return self._fetch(data)

    def _fetch(self, data: dict[str, str]) -> str:
        response = exchange(
            self.session,
            "POST",
            f"{self.config.instance_url}/oauth_token.do",
            timeout=self.config.timeout_seconds,
            max_bytes=1 << 20,
            clock=self.clock,
            data=data,
            headers={"Accept": "application/json"},
        )
        if response.status in (400, 401):
            raise FatalAPIError(
                f"OAuth token refused ({_oauth_error(response.body)})",
                status=401,
                detail="check client_id, client_secret, username and password",
            )
        if response.status >= 300:
            raise RetriableAPIError(
                f"OAuth token endpoint answered HTTP {response.status}", status=response.status
            )
        try:
            payload = response.json()
            token = str(payload["access_token"])
        except (ValueError, KeyError, TypeError):
            raise RetriableAPIError("OAuth token endpoint answered without access_token") from None
        refresh = payload.get("refresh_token")
        redaction.register([token, refresh if isinstance(refresh, str) else None])
        self._token = token
        self._refresh_token = refresh if isinstance(refresh, str) else self._refresh_token
        try:
            lifetime = float(payload.get("expires_in", 1800))
        except (TypeError, ValueError):
            lifetime = 1800.0
        self._token_expires = self.clock() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)
        return token


def _oauth_error(body: bytes) -> str:
    try:
        payload = json.loads(body)
        return str(payload.get("error_description") or payload.get("error") or "no reason given")
    except (ValueError, AttributeError):
        return "no reason given"
