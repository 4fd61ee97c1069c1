"""A configuration mistake stops every command with exit 78 and one line, no secret."""

from __future__ import annotations

from tests.unit.test_config import write
from tests.unit.test_routing_rules import OTHER


def test_cli_config_errors_exit_78_with_one_line(tmp_path, run_fd_sync):
    missing = run_fd_sync("--config", str(tmp_path / "nope.toml"), "once")
    assert missing.code == 78
    assert missing.stderr.strip().splitlines() == [
        f"fd-sync: {tmp_path / 'nope.toml'}: configuration file not found (pass --config PATH "
        "or set FD_SYNC_CONFIG; config.example.toml documents every key)"
    ]
    broken = write(tmp_path, "[servicenow]\npage_size = ")
    result = run_fd_sync("--config", str(broken), "once")
    assert result.code == 78
    assert "Traceback" not in result.output
    assert "line 2" in result.stderr


def test_cli_reads_fd_sync_config_from_the_environment(tmp_path, run_fd_sync):
    result = run_fd_sync("once", env={"FD_SYNC_CONFIG": str(tmp_path / "from-env.toml")})
    assert result.code == 78
    assert "from-env.toml" in result.stderr


def test_a_bad_route_stops_the_command_with_exit_78_and_no_secret(
    tmp_path, write_config, run_fd_sync
):
    config = write_config(route=[{"name": "net", "push_url": OTHER, "labels": {"service": 5}}])
    result = run_fd_sync("--config", str(config), "once")
    assert result.code == 78
    assert result.stderr.strip().endswith("[[route]] #1 'net' labels: service must be a string")
    assert "rOuTeSeCrEt99" not in result.output and "Traceback" not in result.output


def test_check_explains_a_lifecycle_query(write_config, run_fd_sync):
    result = run_fd_sync(
        "--config", str(write_config(servicenow={"query": "active=true"})), "check"
    )
    assert result.code == 78
    assert "[servicenow] query: may not filter on active" in result.stderr
