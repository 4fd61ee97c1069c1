"""fd-sync's own CLI with the Flashduty pacing removed: benchmark only.

The client-side limiter holds pushes to Flashduty's 1000 a minute, so a
backfill of 2,000 events would measure the limit, not fd-sync. The issue asks
for it lifted, and configuration cannot lift it (``max_requests_per_minute``
is validated to at most 1000, which production must keep). This wrapper
replaces the limiter factory that ``fd_sync.wiring`` uses with one that builds
none, then runs the real ``fd-sync`` entry point unchanged. Nothing in the
package offers a way to turn pacing off.
"""

from __future__ import annotations

import fd_sync.wiring
from fd_sync.cli import main


def _no_limiter(per_minute: int, **_: object) -> None:
    return None


if __name__ == "__main__":
    fd_sync.wiring.flashduty.flashduty_limiter = _no_limiter  # type: ignore[assignment]
    main()
