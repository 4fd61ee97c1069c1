"""The Table API client against the simulator: keyset paging, retries, errors, OAuth."""

from __future__ import annotations

import pytest

from fd_sync.config import parse
from fd_sync.errors import AccessDenied, RemoteRejected, TemporaryFailure
from fd_sync.servicenow.client import ServiceNowClient
from fd_sync.servicenow.scan import keyset_query, newest_query
from fd_sync.simulators.http import Fault
from tests.helpers.simulated import open_incident


@pytest.fixture
def client_for(make_config, sleeps):
    def build(**servicenow):
        config = make_config(servicenow=servicenow)
        return ServiceNowClient(config.servicenow, sleep=sleeps)

    return build


def scan_all(client, low="2026-01-01 00:00:00", page_size=None):
    pages = list(client.scan(low, page_size=page_size))
    return pages, [r["sys_id"] for p in pages for r in p.records]


def test_keyset_query_strings():
    low, ts, sid = "2026-11-01 07:55:00", "2026-11-01 08:00:00", "ab" * 16
    assert keyset_query(low, None) == (
        "sys_updated_on>=2026-11-01 07:55:00^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    assert keyset_query(low, (ts, sid)) == (
        f"sys_updated_on>={low}^sys_updated_on>{ts}"
        f"^NQsys_updated_on>={low}^sys_updated_on={ts}^sys_id>{sid}"
        "^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    # The operator's extra query is ANDed into both OR-groups.
    assert keyset_query(low, (ts, sid), "active=true").count("active=true^") == 2
    assert newest_query("active=true") == "active=true^ORDERBYDESCsys_updated_on"


def test_many_rows_in_one_second_across_page_boundaries(servicenow, client_for):
    """The pitfall that made pollers skip or repeat rows: a page full of one timestamp."""
    stamp = servicenow.clock.text()
    created = {servicenow.create(updated_on=stamp)["sys_id"] for _ in range(23)}
    pages, seen = scan_all(client_for(page_size=5))
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == created
    assert len(pages) == 5  # 5+5+5+5+3, then an empty page ends the scan
    assert len(servicenow.requests_to("/api/now/table/incident")) == 6


def test_short_acl_pages_do_not_end_the_scan(servicenow, client_for):
    rows = [open_incident(servicenow) for _ in range(10)]
    # Rows 1-4 are unreadable: the first page of 5 comes back with one row.
    servicenow.acl_hidden.update(r["sys_id"] for r in rows[1:5])
    pages, seen = scan_all(client_for(page_size=5))
    assert pages[0].raw_count == 1
    assert seen == [r["sys_id"] for r in rows[:1] + rows[5:]]


def test_duplicated_rows_are_dropped(servicenow, client_for):
    rows = [open_incident(servicenow) for _ in range(6)]
    servicenow.duplicate_rows = 2
    pages, seen = scan_all(client_for(page_size=3))
    assert seen == [r["sys_id"] for r in rows]
    assert sum(p.raw_count for p in pages) == 8


def test_newest_and_server_clock(servicenow, client_for):
    open_incident(servicenow)
    last = open_incident(servicenow)
    newest, server_now = client_for().newest()
    assert newest == last["sys_updated_on"]
    assert server_now == servicenow.clock.now()


def test_429_waits_for_retry_after(servicenow, client_for, sleeps):
    open_incident(servicenow)
    servicenow.inject(status=429, headers={"Retry-After": "7"}, body='{"error":{}}')
    _, seen = scan_all(client_for())
    assert len(seen) == 1
    assert sleeps.calls == [7.0]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=502),  # an HTML page from a proxy
        Fault(
            status=503,
            body='{"error":{"message":"Transaction cancelled: maximum execution '
            'time exceeded"},"status":"failure"}',
        ),
        Fault(drop=True),
        Fault(truncate=True),
        Fault(status=200, body="<html><body>Login</body></html>"),
        Fault(status=200, body='{"result": null}'),
    ],
    ids=["html-502", "json-503", "dropped", "truncated", "login-page", "null-result"],
)
def test_transient_failures_are_retried(servicenow, client_for, sleeps, fault):
    open_incident(servicenow)
    servicenow.inject(fault)
    _, seen = scan_all(client_for())
    assert len(seen) == 1
    assert len(sleeps.calls) == 1
    assert 0.25 <= sleeps.calls[0] <= 0.5  # first backoff: 0.5 s with equal jitter


def test_retries_run_out_with_a_clear_temporary_failure(servicenow, client_for, sleeps):
    servicenow.inject(status=502, times=10)
    with pytest.raises(TemporaryFailure) as info:
        scan_all(client_for(max_attempts=3))
    message = str(info.value)
    assert servicenow.url in message
    assert "HTML error page" in message and "HTTP 502" in message
    assert "gave up after 3 attempt(s)" in message
    assert len(sleeps.calls) == 2
    assert len(servicenow.requests) == 3


def test_backoff_doubles_and_is_capped(servicenow, client_for, sleeps):
    servicenow.inject(status=500, times=20)
    with pytest.raises(TemporaryFailure):
        scan_all(client_for(max_attempts=10))
    bases = [0.5 * 2**i for i in range(9)]
    for slept, base in zip(sleeps.calls, bases, strict=True):
        capped = min(base, 30.0)
        assert capped / 2 <= slept <= capped


def test_401_is_not_retried_and_names_the_user(servicenow, client_for, sleeps):
    with pytest.raises(AccessDenied) as info:
        scan_all(client_for(password="wrong-password"))
    assert len(servicenow.requests) == 1
    assert sleeps.calls == []
    message = str(info.value)
    assert "'svc.fdsync'" in message and "HTTP 401" in message
    assert "wrong-password" not in message
    assert info.value.exit_code == 77


def test_403_points_at_roles(servicenow, client_for):
    servicenow.deny_read = True
    with pytest.raises(AccessDenied, match="grant the itil role or a read ACL"):
        scan_all(client_for())


def test_400_quotes_servicenow(client_for):
    with pytest.raises(RemoteRejected) as info:
        scan_all(client_for(table="incidentx"))
    assert "Invalid table incidentx" in str(info.value)
    assert info.value.exit_code == 76


def test_unreachable_instance(make_config, sleeps):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = make_config(servicenow={"instance_url": f"http://127.0.0.1:{port}"})
    client = ServiceNowClient(config.servicenow, sleep=sleeps)
    with pytest.raises(TemporaryFailure) as info:
        list(client.scan("2026-01-01 00:00:00"))
    assert f"http://127.0.0.1:{port}" in str(info.value)
    assert "connection refused" in str(info.value)


def test_a_trickling_body_hits_the_total_deadline(servicenow, client_for, sleeps):
    open_incident(servicenow)
    servicenow.inject(trickle=0.2, times=5)
    with pytest.raises(TemporaryFailure, match="not complete within 1 s"):
        scan_all(client_for(timeout_seconds=1, max_attempts=1))


def test_an_oversized_body_is_refused_without_retrying(servicenow, client_for, sleeps, monkeypatch):
    from fd_sync.servicenow import client as module

    monkeypatch.setattr(module, "MAX_RESPONSE_BYTES", 4096)
    for _ in range(40):
        open_incident(servicenow, description="x" * 200)
    with pytest.raises(TemporaryFailure, match="larger than"):
        scan_all(client_for())
    assert sleeps.calls == []


def test_rows_out_of_order_stop_the_scan(servicenow, client_for, monkeypatch):
    """If an instance ignored ORDERBY, continuing would skip rows: stop and say so."""
    a = open_incident(servicenow)
    b = open_incident(servicenow)
    servicenow.inject(
        status=200,
        body=__import__("json").dumps(
            {
                "result": [
                    {"sys_id": b["sys_id"], "sys_updated_on": b["sys_updated_on"]},
                    {"sys_id": a["sys_id"], "sys_updated_on": a["sys_updated_on"]},
                ]
            }
        ),
    )
    with pytest.raises(RemoteRejected, match="out of order"):
        scan_all(client_for())


def test_oauth_password_grant_and_refresh_after_401(servicenow, make_config, sleeps):
    config = make_config(
        servicenow={
            "auth": "oauth",
            "client_id": servicenow.client_id,
            "client_secret": servicenow.client_secret,
        }
    )
    client = ServiceNowClient(config.servicenow, sleep=sleeps)
    open_incident(servicenow)
    assert len(scan_all(client)[1]) == 1
    grants = [r.body.decode() for r in servicenow.requests_to("/oauth_token.do")]
    assert len(grants) == 1 and "grant_type=password" in grants[0]
    servicenow.expire_tokens()  # revoked early: the next request gets a 401
    assert len(scan_all(client)[1]) == 1
    grants = [r.body.decode() for r in servicenow.requests_to("/oauth_token.do")]
    assert len(grants) == 2 and "grant_type=refresh_token" in grants[1]
    assert sleeps.calls == []


def test_oauth_client_credentials_grant(servicenow, make_config, sleeps):
    config = make_config(
        servicenow={
            "auth": "oauth",
            "client_id": servicenow.client_id,
            "client_secret": servicenow.client_secret,
            "username": None,
            "password": None,
        }
    )
    client = ServiceNowClient(config.servicenow, sleep=sleeps)
    scan_all(client)
    assert (
        "grant_type=client_credentials"
        in servicenow.requests_to("/oauth_token.do")[0].body.decode()
    )


def test_oauth_bad_secret_is_access_denied(servicenow, make_config, sleeps):
    config = make_config(
        servicenow={
            "auth": "oauth",
            "client_id": servicenow.client_id,
            "client_secret": "not-the-secret",
        }
    )
    client = ServiceNowClient(config.servicenow, sleep=sleeps)
    with pytest.raises(AccessDenied) as info:
        scan_all(client)
    assert "not-the-secret" not in str(info.value)


def test_only_needed_fields_are_requested(servicenow, client_for):
    open_incident(servicenow)
    scan_all(client_for())
    params = servicenow.requests_to("/api/now/table/incident")[0].query
    assert params["sysparm_display_value"] == "false"
    assert params["sysparm_exclude_reference_link"] == "true"
    assert params["sysparm_no_count"] == "true"
    fields = params["sysparm_fields"].split(",")
    assert {"sys_id", "sys_updated_on", "sys_mod_count", "assignment_group.name"} <= set(fields)
    assert "work_notes" not in fields


def test_parse_error_config_for_client(tmp_path):
    # A config without a scheme never reaches the client.
    with pytest.raises(Exception, match="https://"):
        parse(
            {
                "servicenow": {
                    "instance_url": "acme.service-now.com",
                    "username": "u",
                    "password": "p",
                },
                "flashduty": {"push_url": "x"},
            },
            path=tmp_path / "c.toml",
            env={},
        )


def test_an_untrusted_certificate_names_the_fix_and_is_not_retried(
    tls, sn_clock, make_config, sleeps
):
    from fd_sync.simulators.servicenow import ServiceNowSim

    with ServiceNowSim(clock=sn_clock, tls=tls.server_context) as sim:
        config = make_config(servicenow={"instance_url": sim.url})
        client = ServiceNowClient(config.servicenow, sleep=sleeps)
        with pytest.raises(TemporaryFailure) as info:
            list(client.scan("2026-01-01 00:00:00"))
        assert sim.url in str(info.value)
        assert "TLS certificate not trusted" in str(info.value)
        assert "[http] ca_bundle" in str(info.value)
        assert sleeps.calls == []


def test_ca_bundle_makes_a_private_ca_trusted(tls, sn_clock, make_config, sleeps):
    from fd_sync import wiring
    from fd_sync.simulators.servicenow import ServiceNowSim

    with ServiceNowSim(clock=sn_clock, tls=tls.server_context) as sim:
        open_incident(sim)
        config = make_config(
            servicenow={"instance_url": sim.url}, http={"ca_bundle": str(tls.ca_file)}
        )
        client = wiring.servicenow_client(config, sleep=sleeps)
        assert len(list(client.scan("2026-01-01 00:00:00"))) == 1


def test_ca_bundle_wins_over_requests_ca_bundle(
    tls, sn_clock, make_config, sleeps, monkeypatch, tmp_path
):
    from fd_sync import wiring
    from fd_sync.simulators.servicenow import ServiceNowSim

    other = tmp_path / "other.pem"
    other.write_text(__import__("trustme").CA().cert_pem.bytes().decode())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    with ServiceNowSim(clock=sn_clock, tls=tls.server_context) as sim:
        config = make_config(
            servicenow={"instance_url": sim.url}, http={"ca_bundle": str(tls.ca_file)}
        )
        assert (
            list(wiring.servicenow_client(config, sleep=sleeps).scan("2026-01-01 00:00:00")) == []
        )


def test_credentials_outside_latin_1_are_sent_as_utf_8(sn_clock, make_config, sleeps):
    """``svc.fdsync™`` or a password with € crashed requests' Latin-1 Basic header with a
    traceback (issue 23, item 12): they go as UTF-8, as ServiceNow reads them."""
    from fd_sync.simulators.servicenow import ServiceNowSim

    with ServiceNowSim(username="svc.fdsync™", password="pässwörd€", clock=sn_clock) as sim:
        open_incident(sim)
        config = make_config(
            servicenow={"instance_url": sim.url, "username": sim.username, "password": sim.password}
        )
        client = ServiceNowClient(config.servicenow, sleep=sleeps)
        _, ids = scan_all(client)
        assert len(ids) == 1
        wrong = make_config(
            servicenow={"instance_url": sim.url, "username": sim.username, "password": "pässwörd"}
        )
        with pytest.raises(AccessDenied):
            scan_all(ServiceNowClient(wrong.servicenow, sleep=sleeps))
