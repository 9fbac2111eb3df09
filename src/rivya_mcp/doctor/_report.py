"""The doctor's findings and their table: one row per check, and for each failure what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    """One check's outcome. ``lines`` are its details (the first one shows in the table row)."""

    name: str
    status: Status
    lines: tuple[str, ...]
    fix: str | None = None
    """What to do, for a ``fail`` (and a ``warn`` worth acting on)."""


@dataclass
class DoctorReport:
    base_url: str
    model: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def exit_code(self) -> int:
        """0 when everything holds (warnings included), 1 when any check failed."""
        return 1 if self.failed else 0


_LABEL = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def render(report: DoctorReport) -> str:
    """The report as a plain-text table (no colours: it may land in a bug report)."""
    width = max([len("CHECK"), *(len(c.name) for c in report.checks)])
    out = [f"rivya-mcp doctor: {report.base_url}, model {report.model}", ""]
    out.append(f"{'CHECK'.ljust(width)}  RESULT  DETAIL")
    for check in report.checks:
        first, *rest = check.lines or ("",)
        out.append(f"{check.name.ljust(width)}  {_LABEL[check.status].ljust(6)}  {first}")
        out.extend(f"{''.ljust(width)}          {line}" for line in rest)
    out.append("")
    failed = report.failed
    if not failed:
        warned = [c for c in report.checks if c.status == "warn"]
        out.append("Everything holds." + (f" {len(warned)} warning(s) above." if warned else ""))
    else:
        out.append(f"{len(failed)} check(s) failed. What to do:")
        out.extend(f"- {c.name}: {c.fix or 'see the detail above'}" for c in failed)
    warned_fixes = [c for c in report.checks if c.status == "warn" and c.fix]
    if warned_fixes:
        out.append("Warnings:")
        out.extend(f"- {c.name}: {c.fix}" for c in warned_fixes)
    return "\n".join(out) + "\n"
