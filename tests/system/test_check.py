"""``fd-sync check``: one line per hop, the right hint for each way it can fail."""

from __future__ import annotations

import socket

from tests.helpers.simulated import open_incident


def lines_with(result, prefix):
    return [line for line in result.stdout.splitlines() if line.startswith(prefix)]


def test_everything_passes(servicenow, flashduty, write_config, run_fd_sync):
    open_incident(servicenow)
    result = run_fd_sync("--config", str(write_config()), "check")
    assert result.code == 0, result.output
    assert lines_with(result, "fail") == []
    for step in (
        "servicenow dns",
        "servicenow tcp",
        "servicenow auth",
        "servicenow read",
        "servicenow query",
        "servicenow choices",
        "flashduty  push",
    ):
        assert any(step in line for line in lines_with(result, "ok")), step
    assert "all checks passed" in result.stdout
    assert flashduty.events() == []  # the probe created nothing


def test_refused_connection_gets_the_status_0_hint(write_config, run_fd_sync):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = write_config(servicenow={"instance_url": f"http://127.0.0.1:{port}"})
    result = run_fd_sync("--config", str(config), "check")
    assert result.code == 75
    assert "fail  servicenow tcp" in result.stdout
    assert "HTTP status 0" in result.stdout and "firewall" in result.stdout


def test_401_gets_the_credentials_hint(servicenow, write_config, run_fd_sync):
    result = run_fd_sync(
        "--config", str(write_config(servicenow={"password": "nope-nope"})), "check"
    )
    assert result.code == 77
    assert "fail  servicenow auth" in result.stdout
    assert "check [servicenow] username and password" in result.stdout
    assert len(servicenow.requests) == 1  # no retry: the account must not be locked


def test_untrusted_certificate_gets_the_ca_bundle_hint(tls, sn_clock, write_config, run_fd_sync):
    from fd_sync.simulators.servicenow import ServiceNowSim

    with ServiceNowSim(clock=sn_clock, tls=tls.server_context) as sim:
        config = write_config(servicenow={"instance_url": sim.url})
        result = run_fd_sync("--config", str(config), "check")
        assert result.code == 75
        assert "fail  servicenow tls" in result.stdout
        assert "not trusted" in result.stdout and "[http] ca_bundle" in result.stdout
        trusted = write_config(
            servicenow={"instance_url": sim.url},
            http={"ca_bundle": str(tls.ca_file)},
            name="trusted.toml",
        )
        result = run_fd_sync("--config", str(trusted), "check")
        assert "ok    servicenow tls" in result.stdout
        assert "ok    servicenow auth" in result.stdout


def test_html_502_from_a_proxy_gets_its_hint(servicenow, write_config, run_fd_sync):
    servicenow.inject(status=502, path="/api/now/table/", times=5)
    result = run_fd_sync("--config", str(write_config()), "check")
    assert result.code == 75
    assert "fail  servicenow http" in result.stdout
    assert "HTML" in result.stdout and "proxy" in result.stdout


def test_rejected_integration_key(servicenow, flashduty, write_config, run_fd_sync):
    """standard alert.mdx: a wrong key is HTTP 400 InvalidParameter "integration_key is not a
    valid one" (not 401); check reports the key as rejected and never prints it."""
    config = write_config(
        flashduty={
            "push_url": flashduty.url + "/event/push/alert/standard?integration_key=not-the-key"
        }
    )
    result = run_fd_sync("--config", str(config), "check")
    assert result.code == 76
    assert "fail  flashduty  push" in result.stdout and "rejected" in result.stdout
    assert "not-the-key" not in result.output


def test_clock_skew_is_a_warning_not_a_failure(servicenow, write_config, run_fd_sync):
    # The simulated instance's clock is frozen on 2026-11-01, weeks from this host's.
    result = run_fd_sync("--config", str(write_config()), "check")
    assert result.code == 0
    assert any("servicenow clock" in line for line in lines_with(result, "warn"))


def test_send_test_opens_and_resolves_a_labelled_alert(
    servicenow, flashduty, write_config, run_fd_sync, push_format
):
    result = run_fd_sync("--config", str(write_config(push_format)), "check", "--send-test")
    assert result.code == 0, result.output
    events = flashduty.events()
    assert [e.kind for e in events] == ["create", "resolve"]
    assert "fd-sync test alert" in str(events[0].body)
    assert flashduty.open_keys() == set()
    assert events[0].request_id in result.stdout


def test_every_route_push_url_is_probed(servicenow, flashduty, write_config, run_fd_sync):
    bad = flashduty.url + "/event/push/alert/standard?integration_key=route-key-revoked"
    config = write_config(
        route=[{"name": "network", "match": {"category": ["network"]}, "push_url": bad}]
    )
    result = run_fd_sync("--config", str(config), "check")
    assert result.code == 76
    assert any("push_url: reachable" in line for line in lines_with(result, "ok"))
    assert any("route network:" in line for line in lines_with(result, "fail"))
    assert "route-key-revoked" not in result.output
    assert flashduty.events() == []


def test_openapi_app_key_and_channel(servicenow, flashduty, write_config, run_fd_sync):
    channel = flashduty.add_channel("Ops")
    flashduty.add_rule(channel, "Ops default", [])
    domain = flashduty.url
    good = write_config(
        flashduty={"app_key": flashduty.app_key, "api_domain": domain, "channel_id": channel}
    )
    result = run_fd_sync("--config", str(good), "check")
    assert result.code == 0, result.output
    assert any("app_key accepted" in line for line in lines_with(result, "ok"))
    assert any(f"channel {channel}: 1 enabled" in line for line in lines_with(result, "ok"))
    bad = write_config(
        flashduty={"app_key": "not-the-app-key", "api_domain": domain}, name="bad.toml"
    )
    result = run_fd_sync("--config", str(bad), "check")
    assert result.code == 77
    assert "fail  openapi" in result.stdout and "not-the-app-key" not in result.output


def test_an_unreachable_flashduty_host_is_reported_once(servicenow, write_config, run_fd_sync):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = f"http://127.0.0.1:{port}/event/push/alert/standard?integration_key="
    config = write_config(
        flashduty={"push_url": down + "default-key"},
        route=[{"name": "network", "match": {"category": ["network"]}, "push_url": down + "k2"}],
    )
    result = run_fd_sync("--config", str(config), "check")
    assert result.code == 75
    # The default push_url and the route share the host: one refused connection, not two.
    assert len([line for line in lines_with(result, "fail") if "flashduty  tcp" in line]) == 1
    assert "route network" not in result.stdout  # nothing to probe behind a dead host


def test_a_400_about_the_probe_body_still_proves_the_key(
    servicenow, flashduty, write_config, run_fd_sync
):
    """Any other 400 to the empty probe is Flashduty validating the body: the key passed."""
    result = run_fd_sync("--config", str(write_config("standard")), "check")
    assert result.code == 0, result.output
    (line,) = [x for x in lines_with(result, "ok") if "flashduty  push" in x]
    assert "integration key accepted" in line


def test_the_servicenow_format_says_what_the_probe_cannot_prove(
    servicenow, flashduty, write_config, run_fd_sync
):
    result = run_fd_sync("--config", str(write_config("servicenow")), "check")
    assert result.code == 0, result.output
    (line,) = [x for x in lines_with(result, "ok") if "flashduty  push" in x]
    assert "proven only by --send-test" in line


def test_unreadable_choice_labels_are_a_warning(servicenow, write_config, run_fd_sync):
    servicenow.deny_tables.add("sys_choice")
    result = run_fd_sync("--config", str(write_config()), "check")
    assert result.code == 0
    (line,) = [x for x in lines_with(result, "warn") if "servicenow choices" in x]
    assert "a base instance's labels are sent" in line
