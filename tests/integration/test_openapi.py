"""The Flashduty OpenAPI client: envelopes, errors with request ids, batching, paging,
pacing under the account's limits, a private api_domain behind a private CA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fd_sync import redaction, wiring
from fd_sync.config import parse
from fd_sync.errors import AccessDenied, NotFound, RemoteRejected, TemporaryFailure
from fd_sync.flashduty.openapi import LIMITS, OpenAPIClient
from fd_sync.http.ratelimit import SlidingWindowLimiter
from fd_sync.simulators.flashduty import FlashdutySim, layer
from tests.helpers.cycle import Sleeps


@pytest.fixture
def client(flashduty, sleeps) -> OpenAPIClient:
    return OpenAPIClient(flashduty.url, flashduty.app_key, max_attempts=3, sleep=sleeps)


def test_a_call_is_a_post_with_the_app_key_and_returns_data(flashduty, client):
    channel = flashduty.add_channel("Network")
    rule = flashduty.add_rule(channel, "Network P1", [layer()])
    (got,) = client.escalation_rules(channel)
    assert got["rule_id"] == rule and got["rule_name"] == "Network P1"
    (request,) = flashduty.requests
    assert request.method == "POST" and request.path == "/channel/escalate/rule/list"
    assert request.query == {"app_key": flashduty.app_key}
    assert request.json() == {"channel_id": channel}
    assert request.headers["Content-Type"] == "application/json"


def test_a_wrong_app_key_is_access_denied_with_the_request_id(flashduty, sleeps):
    bad = OpenAPIClient(flashduty.url, "not-the-key-1234", sleep=sleeps)
    redaction.register(["not-the-key-1234"])
    with pytest.raises(AccessDenied) as info:
        bad.escalation_rules(1)
    message = str(info.value)
    assert "HTTP 401 Unauthorized: invalid app_key (request_id " in message
    assert "/channel/escalate/rule/list" in message and "[flashduty] app_key" in message
    assert "not-the-key-1234" not in message
    assert info.value.exit_code == 77
    assert len(flashduty.requests) == 1  # never retried


def test_a_missing_channel_is_resource_not_found(flashduty, client):
    with pytest.raises(NotFound) as info:
        client.escalation_rules(999)
    assert "HTTP 400 ResourceNotFound: channel 999 not found" in str(info.value)
    assert info.value.exit_code == 76


def test_server_errors_are_retried_then_temporary(flashduty, client, sleeps):
    flashduty.add_channel("Network", channel_id=7)
    flashduty.inject(status=503, path="/channel/", times=2)
    assert client.escalation_rules(7) == []
    assert len(sleeps.calls) == 2
    flashduty.inject(status=502, path="/channel/", times=3)
    with pytest.raises(TemporaryFailure, match="HTTP 502"):
        client.escalation_rules(7)


@pytest.mark.parametrize(
    ("status", "code", "error", "retried"),
    [
        (400, "InvalidParameter", RemoteRejected, False),
        (400, "MethodNotAllowed", RemoteRejected, False),
        (400, "ResourceNotFound", NotFound, False),
        (401, "Unauthorized", AccessDenied, False),
        (403, "AccessDenied", AccessDenied, False),
        (429, "RequestTooFrequently", TemporaryFailure, True),
    ],
)
def test_every_documented_error_code_is_handled_with_its_request_id(
    flashduty, client, sleeps, status, code, error, retried
):
    """The OpenAPI envelope (on-call.openapi.en.json, and the error table of the standard
    alert page): refusals are final, 429 is retried, each error names the request id."""
    envelope = {"request_id": "rq-documented", "error": {"code": code, "message": "as said"}}
    flashduty.inject(status=status, body=json.dumps(envelope), path="/channel/", times=3)
    with pytest.raises(error) as info:
        client.escalation_rules(1)
    assert f"HTTP {status} {code}" in str(info.value)
    assert "request_id rq-documented" in str(info.value)
    assert len(flashduty.requests) == (3 if retried else 1)


def test_infos_are_batched_and_unknown_ids_left_out(flashduty, client):
    ids = [flashduty.add_person(f"Person {n}", f"p{n}@example.com") for n in range(250)]
    found = client.infos("person", [*ids, ids[0]])
    assert len(found) == 250 and found[str(ids[7])]["person_name"] == "Person 7"
    assert len(flashduty.requests_to("/person/infos")) == 3  # 100 + 100 + 50
    # One deleted id in a batch: Flashduty refuses the batch; the client splits it.
    flashduty.requests.clear()
    del flashduty.persons[ids[5]]
    found = client.infos("person", ids[:8])
    assert set(found) == {str(i) for i in ids[:8]} - {str(ids[5])}
    assert len(flashduty.requests_to("/person/infos")) <= 7  # halving, not one per id


def test_lists_are_read_page_by_page(flashduty, client):
    for n in range(230):
        flashduty.add_channel(f"channel {n}")
    assert len(client.channels()) == 230
    pages = [r.json() for r in flashduty.requests_to("/channel/list")]
    assert pages == [{"p": p, "limit": 100} for p in (1, 2, 3)]


def test_a_listing_goes_on_past_the_capped_total(flashduty, client):
    """pagination.mdx: total is exact only below 1000, so it never ends a listing; a page
    short of the limit does where the endpoint sends no has_next_page (/member/list)."""
    for n in range(1000):  # and the app key's owner: 1001 members
        flashduty.add_person(f"member {n}", f"m{n}@example.com")
    members = client.members()
    assert len(members) == 1001
    assert {"member_id", "member_name", "email"} <= members[0].keys()
    assert len(flashduty.requests_to("/member/list")) == 11


def test_a_listing_stops_where_has_next_page_says(flashduty, client):
    for n in range(200):  # exactly two full pages: only has_next_page says "no more"
        flashduty.add_channel(f"channel {n}")
    assert len(client.channels()) == 200
    assert len(flashduty.requests_to("/channel/list")) == 2


def test_requests_are_paced_under_the_account_limits(flashduty):
    assert all(limit < 50 for limit, period in LIMITS if period == 1.0)
    assert all(limit < 1000 for limit, period in LIMITS if period == 60.0)
    now = [0.0]
    waits = Sleeps()

    def sleep(seconds: float) -> None:
        waits(seconds)
        now[0] += seconds

    limiter = SlidingWindowLimiter(LIMITS, clock=lambda: now[0], sleep=sleep)
    paced = OpenAPIClient(flashduty.url, flashduty.app_key, limiter=limiter)
    flashduty.add_channel("c", channel_id=3)
    sent_at = []
    for _ in range(45):
        paced.escalation_rules(3)
        sent_at.append(now[0])
    assert max(sum(1 for t in sent_at if start <= t < start + 1.0) for start in sent_at) <= 40
    assert waits.calls  # the 41st request waited


def test_a_private_api_domain_behind_a_private_ca(tls, tmp_path, servicenow):
    with FlashdutySim(tls=tls.server_context) as private:
        channel = private.add_channel("Ops")
        domain = private.url.removeprefix("https://")  # a host:port, as operators write it
        base = {
            "servicenow": {
                "instance_url": servicenow.url,
                "username": "svc",
                "password": "pw-secret-1",
            },
            "flashduty": {
                "push_url": private.push_url_standard,
                "app_key": private.app_key,
                "api_domain": domain,
            },
            "sync": {"database": str(tmp_path / "db.sqlite")},
        }
        trusting = parse(
            {**base, "http": {"ca_bundle": str(tls.ca_file)}}, path=tmp_path / "c", env={}
        )
        assert trusting.flashduty.api_url == private.url
        assert wiring.openapi_client(trusting, purpose="test").escalation_rules(channel) == []
        plain = parse(base, path=tmp_path / "c", env={})
        with pytest.raises(TemporaryFailure, match=r"set \[http\] ca_bundle"):
            wiring.openapi_client(plain, purpose="test").escalation_rules(channel)


def test_app_key_sources_and_redaction(tmp_path):
    key_file = tmp_path / "app_key"
    key_file.write_text("fromfile-0123456789\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "flashduty_app_key").write_text("fromcred-0123456789")
    base = {
        "servicenow": {
            "instance_url": "https://a.service-now.com",
            "username": "u",
            "password": "pw-secret-1",
        },
        "flashduty": {
            "push_url": "https://api.flashcat.cloud/event/push/servicenow/tok3n",
            "app_key_file": str(key_file),
        },
        "sync": {"database": "/tmp/x.db"},
    }
    path = Path("/etc/fd-sync/config.toml")
    assert parse(base, path=path, env={}).flashduty.app_key == "fromfile-0123456789"
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert parse(base, path=path, env=env).flashduty.app_key == "fromcred-0123456789"
    env["FD_SYNC_FLASHDUTY_APP_KEY"] = "fromenv-0123456789"
    cfg = parse(base, path=path, env=env)
    assert cfg.flashduty.app_key == "fromenv-0123456789"
    assert "fromenv-0123456789" in cfg.secrets()
    assert repr(cfg.flashduty).count("fromenv") == 0
    assert cfg.flashduty.api_url == "https://api.flashcat.cloud"


def test_an_error_body_is_one_line_without_the_key(flashduty, client):
    flashduty.inject(
        status=400,
        path="/team/infos",
        body=json.dumps(
            {"request_id": "rid-42", "error": {"code": "InvalidParameter", "message": "bad\nids"}}
        ),
    )
    from fd_sync.errors import RemoteRejected

    with pytest.raises(RemoteRejected) as info:
        client.infos("team", [1])
    assert str(info.value).endswith("HTTP 400 InvalidParameter: bad ids (request_id rid-42)")
