"""Secrets never leave the process: not in logs at any level, errors, status, check, outbox
output, exception messages or the process title. (Every subprocess and in-process log of
the whole suite is also checked for the simulators' credentials by conftest.py.)"""

from __future__ import annotations

import io
import signal
import socket
from pathlib import Path

from fd_sync import logs, redaction
from tests.helpers.processes import is_status
from tests.helpers.simulated import open_incident


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_log_events_are_redacted_at_every_level():
    redaction.register(["tok-0123456789"])
    buffer = io.StringIO()
    logs.configure("debug", stream=buffer, json=True)
    log = logs.get("t")
    log.debug("d", url="https://x/event/push/servicenow/tok-0123456789")
    log.error("e", error=ValueError("failed for tok-0123456789"), nested={"a": ["tok-0123456789"]})
    text = buffer.getvalue()
    assert "tok-0123456789" not in text
    assert text.count("***") == 3


def test_oauth_tokens_stay_secret(servicenow, flashduty, write_config, run_fd_sync):
    config = str(
        write_config(
            servicenow={
                "auth": "oauth",
                "client_id": servicenow.client_id,
                "client_secret": servicenow.client_secret,
            }
        )
    )
    open_incident(servicenow)
    result = run_fd_sync("--config", config, "once", "--since", "2026-11-01")
    assert result.code == 0, result.output
    tokens = [*servicenow.tokens, *servicenow.refresh_tokens]
    assert tokens
    for token in tokens:
        assert token not in result.output


def test_unreachable_flashduty_error_does_not_quote_the_push_url(
    servicenow, flashduty, write_config, run_fd_sync
):
    url = f"http://127.0.0.1:{closed_port()}/event/push/servicenow/tok-abcdef987654"
    config = str(write_config(flashduty={"push_url": url}))
    run_fd_sync("--config", config, "once")
    open_incident(servicenow)
    result = run_fd_sync("--config", config, "once")
    assert result.code == 75
    assert "connection refused" in result.stderr
    assert "tok-abcdef987654" not in result.output


def test_proxy_password_stays_secret(servicenow, write_config, run_fd_sync):
    config = str(
        write_config(http={"proxy": f"http://fdsync:proxy-secret-42@127.0.0.1:{closed_port()}"})
    )
    result = run_fd_sync("--config", config, "once")
    assert result.code == 75
    assert "proxy-secret-42" not in result.output


def test_secrets_from_files_and_credentials_stay_secret(
    servicenow, flashduty, tmp_path, write_config, run_fd_sync
):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "servicenow_password").write_text(servicenow.password)
    (creds / "flashduty_push_url").write_text(flashduty.push_url_servicenow)
    config = str(write_config(servicenow={"password": None}, flashduty={"push_url": None}))
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    open_incident(servicenow)
    for args in (
        ["once", "--since", "2026-11-01"],
        ["status"],
        ["status", "--json"],
        ["outbox", "list", "--all"],
        ["check", "--send-test"],
    ):
        result = run_fd_sync("--config", config, *args, env=env)
        assert result.code == 0, (args, result.output)
        assert flashduty.token not in result.output and servicenow.password not in result.output


def test_the_process_title_holds_no_secret(servicenow, flashduty, daemon, notify):
    proc = daemon()
    notify.wait_for(is_status("last cycle"))
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
    comm = Path(f"/proc/{proc.pid}/comm").read_text()
    for secret in (servicenow.password, flashduty.token, flashduty.integration_key):
        assert secret not in cmdline and secret not in comm
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_a_refused_password_from_the_environment_names_the_variable(
    servicenow, write_config, run_fd_sync
):
    config = str(write_config(servicenow={"password": None}))
    result = run_fd_sync(
        "--config", config, "once", env={"FD_SYNC_SERVICENOW_PASSWORD": "wrong-from-env-1"}
    )
    assert result.code == 77
    line = result.stderr.strip().splitlines()[-1]
    assert "password from environment variable FD_SYNC_SERVICENOW_PASSWORD" in line
    assert "wrong-from-env-1" not in result.output


def test_check_lists_where_each_secret_comes_from(servicenow, write_config, run_fd_sync):
    config = str(write_config(servicenow={"password": None}))
    env = {"FD_SYNC_SERVICENOW_PASSWORD": servicenow.password}
    result = run_fd_sync("--config", config, "check", env=env)
    assert result.code == 0, result.output
    assert (
        "ok    config     secret      [servicenow] password from environment variable "
        "FD_SYNC_SERVICENOW_PASSWORD"
    ) in result.stdout
    assert f"[flashduty] push_url from {config}: [flashduty] push_url" in result.stdout


def test_a_refused_app_key_names_where_it_came_from(
    servicenow, flashduty, write_config, run_fd_sync
):
    """A key from FD_SYNC_FLASHDUTY_APP_KEY was reported as "set [flashduty] app_key",
    sending the operator to a file that holds none (issue 23, item 13)."""
    config = write_config(flashduty={"api_domain": flashduty.url, "channel_id": 1})
    env = {"FD_SYNC_FLASHDUTY_APP_KEY": "not-the-key"}
    refused = run_fd_sync("--config", str(config), "rules", env=env)
    assert refused.code == 77, refused.output
    assert "the app key from environment variable FD_SYNC_FLASHDUTY_APP_KEY" in refused.stderr
    assert "not-the-key" not in refused.output
