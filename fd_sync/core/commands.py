"""Commands in ServiceNow work notes: ``/flashduty VERB key=value ...``. Pure: parsing only.

A work note whose first non-blank line starts with ``/flashduty`` (any case) is a command;
values may be quoted (``rule="NOC primary"``). The syntax is fixed: other tools and the
service desk's own documentation depend on it.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field

from fd_sync.core.routing import CHANNELS

PREFIX = "/flashduty"
VERBS = ("page", "rules", "status", "help")
SEVERITIES = ("critical", "warning", "info")
KEYS = {
    "page": ("channels", "members", "group", "rule", "severity", "force"),
    "rules": ("group",),
    "status": (),
    "help": (),
}
HELP = "\n".join(
    [
        "[Flashduty] Commands (a work note whose first line starts with /flashduty):",
        "/flashduty page [channels=sms,voice,teams,email] [members=ann@example.com,bob@example.com]"
        ' [group="Network"] [rule="NOC primary"] [severity=critical|warning|info] [force=true]'
        " - page on-call for this incident; what is left out comes from its route",
        '/flashduty rules [group="Network"] - the escalation rules of the route\'s channel',
        "/flashduty status - the alert and Flashduty incident as fd-sync knows them",
        "/flashduty help - this list",
    ]
)


class CommandError(ValueError):
    """A note that is a command but cannot be read: the answer says why, and shows HELP."""


@dataclass(frozen=True)
class ParsedCommand:
    verb: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def channels(self) -> tuple[str, ...] | None:
        text = self.options.get("channels")
        return None if text is None else tuple(split(text))

    @property
    def members(self) -> tuple[str, ...] | None:
        text = self.options.get("members")
        return None if text is None else tuple(split(text))

    @property
    def force(self) -> bool:
        return self.options.get("force", "").lower() in ("true", "yes", "1")


def split(text: str) -> list[str]:
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def first_line(note: str) -> str:
    for line in note.splitlines():
        if line.strip():
            return line.strip()
    return ""


def is_command(note: str) -> bool:
    return first_line(note).lower().startswith(PREFIX)


def closest(value: str, choices: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'sms'?)`` or the valid choices, for a one-line answer."""
    near = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    if near:
        return f" (did you mean {near[0]!r}?)"
    return " (one of " + ", ".join(choices) + ")"


def parse(note: str) -> ParsedCommand:
    """The command of a note that :func:`is_command`; CommandError for anything else."""
    line = first_line(note)
    try:
        words = shlex.split(line[len(PREFIX) :])
    except ValueError as exc:
        raise CommandError(f"cannot read {line!r}: {exc}") from None
    if not words:
        raise CommandError("no command after /flashduty")
    verb = words[0].lower()
    if verb not in VERBS:
        raise CommandError(f"unknown command {words[0]!r}{closest(verb, VERBS)}")
    options: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        key = key.lower()
        if not sep:
            raise CommandError(f"{word!r} is not key=value")
        if key not in KEYS[verb]:
            allowed = KEYS[verb] or ("nothing",)
            raise CommandError(f"{verb} takes no {key!r}{closest(key, allowed)}")
        options[key] = value
    parsed = ParsedCommand(verb, options)
    for channel in parsed.channels or ():
        if channel.lower() not in CHANNELS:
            raise CommandError(f"unknown channel {channel!r}{closest(channel, CHANNELS)}")
    severity = options.get("severity")
    if severity is not None and severity.lower() not in SEVERITIES:
        raise CommandError(f"unknown severity {severity!r}{closest(severity, SEVERITIES)}")
    return parsed
