"""Sessions read the proxy environment once per origin, and still honour it."""

from __future__ import annotations

import requests

from fd_sync.http.transport import make_session


def test_environment_proxies_apply_per_host_and_are_read_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    reads = []
    real = requests.utils.get_environ_proxies

    def counted(url, no_proxy=None):
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counted)
    session = make_session()

    def proxies(url: str) -> dict[str, str]:
        return session.merge_environment_settings(url, {}, True, True, None)["proxies"]

    for _ in range(3):
        assert proxies("https://acme.service-now.com/api/now/table/incident")["https"] == (
            "http://proxy.example:3128"
        )
    assert "https" not in proxies("https://internal.example/api")
    assert len(reads) == 2  # once per origin, not once per request


def test_an_explicit_proxy_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = make_session(proxy="http://explicit.example:8080")
    settings = session.merge_environment_settings("https://acme.example/", {}, True, True, None)
    assert settings["proxies"]["https"] == "http://explicit.example:8080"
