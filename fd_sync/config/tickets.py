"""``[tickets]``: which Flashduty incidents open ServiceNow tickets, and what those say.

Checked here beyond the schema's types, each problem one line naming the key and the fix
(exit 78): the app key it needs, the channels, the severities, the label filter, each
field template (an unknown ``{name}``; a lifecycle field, which follows Flashduty), and
the severity table.
"""

from __future__ import annotations

from typing import Any

from fd_sync.config.checks import LIFECYCLE_FIELDS
from fd_sync.config.model import FlashdutyConfig, TicketsConfig, WritebackConfig
from fd_sync.config.schema import Context, build, problem
from fd_sync.core.tickets import SEVERITIES, template_problem

# Fields fd-sync sets itself on every ticket; a template for them would be overwritten.
OWN_FIELDS = ("urgency", "impact", "correlation_id", "correlation_display")
_LEVEL = ("1", "2", "3")


def parse_tickets(
    v: dict[str, Any], fd: FlashdutyConfig, writeback: WritebackConfig, ctx: Context
) -> TicketsConfig:
    def bad(key: str, message: str) -> Exception:
        return problem(ctx.path, "tickets", key, message)

    enabled = v["enabled"]
    if enabled and not fd.app_key and ctx.secrets_required:
        raise bad(
            "enabled",
            "needs [flashduty] app_key (or app_key_file, FD_SYNC_FLASHDUTY_APP_KEY) to read "
            "Flashduty's incidents; set it, or enabled = false",
        )
    if enabled and not writeback.enabled:
        raise bad(
            "enabled",
            "needs [writeback] enabled = true: acks, comments and resolves in Flashduty "
            "reach the tickets through the write-back; set it, or enabled = false",
        )
    channels = v["channel_ids"]
    if any(isinstance(c, bool) or not isinstance(c, int) or c <= 0 for c in channels):
        raise bad("channel_ids", f"must be Flashduty channel ids (integers), got {channels!r}")
    if enabled and not channels:
        raise bad(
            "channel_ids",
            "is empty: list the Flashduty channels whose incidents open tickets, "
            "e.g. channel_ids = [1234567] (Flashduty: Channels > the channel's id)",
        )
    for severity in v["severities"]:
        if severity not in SEVERITIES:
            raise bad("severities", f"{severity!r} is not a severity; use {', '.join(SEVERITIES)}")
    for key, value in v["labels"].items():
        if not isinstance(value, str):
            raise bad("labels", f"{key} must be a string value to match, got {value!r}")
    fields: list[tuple[str, str]] = []
    for name, template in v["fields"].items():
        key = f"fields.{name}"
        if not isinstance(template, str):
            raise bad(key, f"must be a template string, got {template!r}")
        if name in LIFECYCLE_FIELDS or name.startswith(("closed_", "resolved_")):
            raise bad(
                key,
                "is a lifecycle field: the ticket's state follows Flashduty (acks and "
                "resolves arrive through [writeback]), not a template; remove it",
            )
        if name in OWN_FIELDS:
            raise bad(
                key, "is set by fd-sync (urgency and impact from [tickets.severity]); remove it"
            )
        if message := template_problem(template):
            raise bad(key, message)
        fields.append((name, template))
    if enabled and "short_description" not in v["fields"]:
        raise bad("fields", 'needs short_description (e.g. short_description = "{title}")')
    severity_map: dict[str, tuple[str, str]] = {}
    for severity, levels in v["severity"].items():
        key = f"severity.{severity}"
        if severity not in SEVERITIES:
            raise bad(key, f"{severity!r} is not a severity; use {', '.join(SEVERITIES)}")
        if not isinstance(levels, dict) or set(levels) != {"urgency", "impact"}:
            raise bad(key, 'must be { urgency = "1", impact = "1" }')
        if levels["urgency"] not in _LEVEL or levels["impact"] not in _LEVEL:
            raise bad(key, 'urgency and impact are ServiceNow values "1", "2" or "3"')
        severity_map[severity] = (levels["urgency"], levels["impact"])
    for severity in SEVERITIES:
        severity_map.setdefault(severity, ("123"[SEVERITIES.index(severity)],) * 2)
    return build(
        TicketsConfig,
        v,
        channel_ids=tuple(dict.fromkeys(channels)),
        severities=frozenset(v["severities"]),
        labels=dict(v["labels"]),
        fields=tuple(fields),
        severity=severity_map,
    )
