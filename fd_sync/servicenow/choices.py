"""The instance's choice labels, read from ``sys_choice`` in one request.

``name=<table>^elementINstate,impact,urgency,priority^inactive=false^language=en``:
Flashduty's mapping tables are in English, so a localised instance's English
labels are the ones to send.
"""

from __future__ import annotations

from fd_sync.core.choices import ELEMENTS, ChoiceLabels
from fd_sync.servicenow.client import ServiceNowClient

CHOICE_TABLE = "sys_choice"


def choice_query(table: str) -> str:
    return f"name={table}^elementIN{','.join(ELEMENTS)}^inactive=false^language=en"


def read_choice_labels(client: ServiceNowClient) -> ChoiceLabels:
    """The labels of the configured table's choice fields (raises as every Table API read)."""
    rows, _ = client.table_get(
        {
            "sysparm_query": choice_query(client.config.table),
            "sysparm_fields": "element,value,label",
            "sysparm_limit": "1000",
        },
        table=CHOICE_TABLE,
    )
    return ChoiceLabels.from_rows(row for row in rows if isinstance(row, dict))
