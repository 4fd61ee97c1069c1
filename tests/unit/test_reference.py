"""The site's reference pages are generated from the code (issue 25): a key, command,
exit code, metric or log event that changes without its page changing fails here. Run
``make reference`` (``python -m tools.reference``) and commit the pages."""

from __future__ import annotations

import pytest

from tools.reference import PAGES, REFERENCE


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_reference_page_is_what_the_code_generates(name):
    page = REFERENCE / name
    assert page.exists(), f"docs/reference/{name} is missing: run make reference"
    assert page.read_text() == PAGES[name](), (
        f"docs/reference/{name} is stale: run make reference and commit it"
    )


def test_the_reference_names_what_it_must():
    config = PAGES["configuration.md"]()
    assert "`[tickets]`" in config and "`channel_ids`" in config and "`[forward]`" in config
    cli = PAGES["cli.md"]()
    assert "## `fd-sync tickets backfill`" in cli and "`--since`" in cli
    codes = PAGES["exit-codes.md"]()
    assert all(f"| {code} |" in codes for code in (0, 64, 70, 75, 76, 77, 78))
    assert "`fdsync_tickets_total`" in PAGES["metrics.md"]()
    assert "`ticket_opened`" in PAGES["log-events.md"]()
