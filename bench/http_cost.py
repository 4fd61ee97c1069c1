"""``python -m bench.http_cost``: the CPU of one small POST through requests, urllib3 and
http.client, to the Flashduty simulator on loopback (what the push path is chosen by).

The body is a typical standard-format event; each client keeps one keep-alive connection.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import requests
import urllib3

from bench.processes import Simulator

POSTS = 1000
BODY = json.dumps(
    {
        "event_status": "Warning",
        "title_rule": "INC0010001: disk full on db-7",
        "alert_key": "a" * 32,
        "description": "x" * 200,
        "labels": {"number": "INC0010001", "state": "New"},
    }
).encode()
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def per_post(send: object) -> float:
    assert callable(send)
    for _ in range(20):
        send()
    started = time.process_time()
    for _ in range(POSTS):
        send()
    return (time.process_time() - started) / POSTS * 1e6


def main() -> int:
    with Simulator("flashduty") as flashduty:
        url = flashduty.hello["push_url_standard"]
        parts = urllib.parse.urlsplit(url)
        target = f"{parts.path}?{parts.query}"
        session = requests.Session()
        pool = urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=1)
        connection = http.client.HTTPConnection(parts.hostname, parts.port)

        def with_http_client() -> None:
            connection.request("POST", target, body=BODY, headers=HEADERS)
            connection.getresponse().read()

        figures = {
            "requests": per_post(lambda: session.post(url, data=BODY, headers=HEADERS).content),
            "urllib3": per_post(
                lambda: pool.urlopen("POST", target, body=BODY, headers=HEADERS, retries=False).data
            ),
            "http.client": per_post(with_http_client),
        }
    for name, micros in figures.items():
        print(f"{name:<12} {micros:7.0f} µs of CPU per POST")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
