"""One line of ``fd-sync check``: an area, a step, its level and the hint."""

from __future__ import annotations

from dataclasses import dataclass

from fd_sync.errors import EX_OK, EX_TEMPFAIL

NO_ANSWER_HINT = (
    "no HTTP answer at all (what fd-servicenow reported as 'HTTP status 0'): the host is "
    "unreachable, a firewall blocks outbound HTTPS, or a proxy is needed ([http] proxy)"
)


@dataclass
class Step:
    area: str
    name: str
    level: str  # ok | warn | fail | skip
    detail: str
    hint: str = ""
    exit_code: int = EX_OK

    def lines(self) -> list[str]:
        out = [f"{self.level:<4}  {self.area:<10} {self.name:<11} {self.detail}"]
        if self.hint:
            out.append(f"{'':<4}  {'':<10} {'':<11} hint: {self.hint}")
        return out


def ok(area: str, name: str, detail: str) -> Step:
    return Step(area, name, "ok", detail)


def fail(area: str, name: str, detail: str, hint: str, code: int = EX_TEMPFAIL) -> Step:
    return Step(area, name, "fail", detail, hint, code)
