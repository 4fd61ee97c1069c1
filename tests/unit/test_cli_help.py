"""Every command and option has help, and --help renders it (in process, with CliRunner)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from fd_sync.cli import cli


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize(
    ("path", "command"),
    list(all_commands(cli)),
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_every_command_has_help(path, command):
    assert command.help and len(command.help.strip()) > 20, f"{path} needs help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{' '.join(path)} {param.opts[0]} needs help text"
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="fd-sync")
    assert result.exit_code == 0, result.output
    assert "Usage: fd-sync" in result.output


def test_the_group_documents_its_options():
    result = CliRunner().invoke(cli, ["--help"], prog_name="fd-sync")
    assert result.exit_code == 0
    for option in ("--config", "--log-level", "--lock-wait", "--version"):
        assert option in result.output


def test_a_usage_error_names_the_option():
    result = CliRunner().invoke(cli, ["once", "--no-such-option"], prog_name="fd-sync")
    assert result.exit_code == 2  # click's; main() turns it into 64 (tests/system/test_cli.py)
    assert "No such option '--no-such-option'" in result.output
