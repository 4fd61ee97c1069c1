"""Pushing to Flashduty: what counts as success, what is retried, what is refused for good."""

from __future__ import annotations

import json

import pytest

from fd_sync.errors import FatalAPIError, RetriableAPIError
from fd_sync.flashduty.push import FlashdutyClient, describe

BODY = {"event_status": "Warning", "alert_key": "k1", "title_rule": "INC1: disk", "labels": {}}


@pytest.fixture
def client(flashduty, sleeps):
    return FlashdutyClient(flashduty.push_url_standard, timeout=5, max_attempts=3, sleep=sleeps)


def test_success_returns_the_request_id(client, flashduty):
    receipt = client.push(BODY)
    assert receipt.status == 200
    assert receipt.request_id == flashduty.events()[0].request_id
    assert flashduty.open_keys() == {"k1"}


def test_429_honours_retry_after(client, flashduty, sleeps):
    flashduty.inject(
        status=429,
        headers={"Retry-After": "3"},
        body='{"request_id":"r1","error":{"code":"RequestTooFrequently"}}',
    )
    client.push(BODY)
    assert sleeps.calls == [3.0]
    assert len(flashduty.events()) == 1


def test_429_without_retry_after_backs_off(client, flashduty, sleeps):
    flashduty.inject(status=429, body='{"request_id":"r1","error":{"code":"RequestTooFrequently"}}')
    client.push(BODY)
    assert len(sleeps.calls) == 1 and 0.25 <= sleeps.calls[0] <= 0.5


def test_a_huge_retry_after_is_capped(client, flashduty, sleeps):
    flashduty.inject(status=429, headers={"Retry-After": "86400"}, body="{}")
    client.push(BODY)
    assert sleeps.calls == [60.0]


def test_5xx_html_and_dropped_connections_are_retried(client, flashduty, sleeps):
    flashduty.inject(status=502)
    flashduty.inject(drop=True)
    client.push(BODY)
    assert len(sleeps.calls) == 2
    assert len(flashduty.events()) == 1


def test_a_2xx_carrying_an_error_is_a_failure(client, flashduty, sleeps):
    flashduty.inject(
        status=200,
        body=json.dumps(
            {"request_id": "rid-7", "error": {"code": "InvalidParameter", "message": "bad labels"}}
        ),
    )
    with pytest.raises(FatalAPIError) as info:
        client.push(BODY)
    assert describe(info.value) == "HTTP 200 InvalidParameter: bad labels (request_id rid-7)"
    assert sleeps.calls == []


def test_a_2xx_internal_error_is_retried(client, flashduty, sleeps):
    flashduty.inject(status=200, body='{"request_id":"r","error":{"code":"InternalError"}}')
    client.push(BODY)
    assert len(sleeps.calls) == 1


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (
            lambda c, f: setattr(
                c, "push_url", f.url + "/event/push/alert/standardX?integration_key=x"
            ),
            404,
            "RouteNotFound",
        ),
        (
            lambda c, f: setattr(
                c, "push_url", f.url + "/event/push/alert/standard?integration_key=nope"
            ),
            400,  # standard alert.mdx: "integration_key is not a valid one"
            "InvalidParameter",
        ),
    ],
    ids=["route-not-found", "bad-key"],
)
def test_4xx_is_permanent_and_keeps_flashdutys_words(
    client, flashduty, sleeps, mutate, status, code
):
    mutate(client, flashduty)
    with pytest.raises(FatalAPIError) as info:
        client.push(BODY)
    assert info.value.status == status and info.value.code == code
    assert info.value.request_id  # from the envelope, for Flashduty's support
    assert sleeps.calls == []
    assert len(flashduty.requests) == 1
    assert "nope" not in describe(info.value)


def test_413_is_permanent(client, flashduty):
    flashduty.inject(status=413, body='{"request_id":"r","error":{"code":"EntityTooLarge"}}')
    with pytest.raises(FatalAPIError, match="HTTP 413"):
        client.push(BODY)


def test_invalid_body_is_refused_with_its_reason(client, flashduty):
    with pytest.raises(FatalAPIError) as info:
        client.push({**BODY, "event_status": "Major"})
    assert info.value.code == "InvalidParameter"
    assert "event_status" in describe(info.value)


def test_retries_run_out(client, flashduty, sleeps):
    flashduty.inject(status=503, times=5)
    with pytest.raises(RetriableAPIError):
        client.push(BODY)
    assert len(flashduty.requests) == 3
    assert len(sleeps.calls) == 2


def test_request_id_header_is_used_when_the_body_has_none(client, flashduty):
    flashduty.inject(status=200, body="{}", headers={"Flashcat-Request-Id": "hdr-1"})
    assert client.push(BODY).request_id == "hdr-1"


def test_keep_alive_reuses_one_connection(client, flashduty):
    for i in range(5):
        client.push({**BODY, "alert_key": f"k{i}"})
    assert len(client.poster.manager.pools) == 1
    pool = client.poster.manager.connection_from_url(client.push_url)
    assert pool.num_connections == 1  # one TCP connection for all five
