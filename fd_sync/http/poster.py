"""POSTs to one URL over urllib3: the push path, without requests' per-call machinery.

A small POST through ``requests`` costs about three times the CPU of the same POST through
urllib3, which requests itself is built on (``python -m bench.http_cost`` measures both,
and ``http.client``). A push is the one request fd-sync makes thousands of times, so it
goes to urllib3 directly, keeping every promise of :func:`fd_sync.http.transport.exchange`:

- TLS is always verified: against ``[http] ca_bundle``, else the CA bundle requests uses;
- ``[http] proxy``, else HTTPS_PROXY/HTTP_PROXY with NO_PROXY, read once per URL;
- one deadline from connect to the last byte, a size cap on the answer;
- one keep-alive connection, and never a silent re-send: urllib3's retries are off, so
  a dropped connection is reported and the shared retry policy decides.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Callable, Mapping

import requests
import urllib3

from fd_sync.errors import RetriableAPIError
from fd_sync.http.transport import Exchange, network_reason, read_bounded


def _proxy_for(url: str, proxy: str | None) -> str | None:
    if proxy:
        return proxy
    scheme = urllib.parse.urlsplit(url).scheme
    return requests.utils.get_environ_proxies(url).get(scheme)  # honours NO_PROXY


class Poster:
    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        ca_bundle: str | os.PathLike[str] | None = None,
        proxy: str | None = None,
    ) -> None:
        self.url = url
        self.headers = dict(headers)
        ca_certs = str(ca_bundle) if ca_bundle else requests.utils.DEFAULT_CA_BUNDLE_PATH
        through = _proxy_for(url, proxy)
        if through:
            parsed = urllib3.util.parse_url(through)
            auth = urllib3.make_headers(proxy_basic_auth=parsed.auth) if parsed.auth else None
            self.manager: urllib3.PoolManager = urllib3.ProxyManager(
                parsed._replace(auth=None).url,
                num_pools=1,
                proxy_headers=auth,
                maxsize=1,
                cert_reqs="CERT_REQUIRED",
                ca_certs=ca_certs,
                retries=False,
            )
        else:
            self.manager = urllib3.PoolManager(
                num_pools=1, maxsize=1, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs, retries=False
            )

    def post(
        self,
        body: bytes,
        *,
        timeout: float,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> Exchange:
        started = clock()
        try:
            response = self.manager.urlopen(
                "POST",
                self.url,
                body=body,
                headers=self.headers,
                timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
                retries=False,
                redirect=False,
                preload_content=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason, retry = network_reason(exc, timeout)
            raise RetriableAPIError(reason, retry=retry) from None
        try:
            data = read_bounded(
                response, response.status, max_bytes, started + timeout, timeout, clock
            )
        finally:
            response.release_conn()
        return Exchange(
            status=response.status,
            headers=response.headers,
            body=data,
            elapsed=clock() - started,
        )
