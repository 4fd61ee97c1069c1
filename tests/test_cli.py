"""The command line itself: help for every command, version, usage errors."""

from __future__ import annotations

import click
import pytest

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
def test_every_command_has_help(path, command, run_fd_sync):
    assert command.help and len(command.help.strip()) > 20, f"{path} needs help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{' '.join(path)} {param.opts[0]} needs help text"
    result = run_fd_sync(*path, "--help")
    assert result.code == 0
    assert "Usage: fd-sync" in result.stdout


def test_version(run_fd_sync):
    from fd_sync import __version__

    result = run_fd_sync("--version")
    assert result.code == 0 and __version__ in result.stdout


def test_usage_errors_exit_64(run_fd_sync):
    assert run_fd_sync("no-such-command").code == 64
    assert run_fd_sync("once", "--no-such-option").code == 64
