"""Domain exceptions; the CLI maps them to exit codes and the API to HTTP statuses."""

from __future__ import annotations

from dataclasses import dataclass, field


class GridmgrError(Exception):
    """Base of every error gridmgr raises on purpose."""

    code = "error"


class BadInput(GridmgrError):
    """The caller's input is wrong; the message says what to fix (CLI exit 2, HTTP 4xx)."""

    code = "bad_input"


class NotFound(GridmgrError):
    """A named thing (house code, grid, plan, area, person) does not exist."""

    code = "not_found"


class Forbidden(GridmgrError):
    """The caller's role or area does not allow this."""

    code = "forbidden"


class Conflict(GridmgrError):
    """The change collides with the current state (e.g. a concurrent move)."""

    code = "conflict"


@dataclass(frozen=True)
class RowProblem:
    """One problem in an input file: 1-based data row, column and reason."""

    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        """Render as 'row 12, column lat: latitude 123.4 out of range'."""
        return f"row {self.row}, column {self.column}: {self.reason}"


@dataclass
class ValidationReport:
    """What whole-file validation found: problems, and warnings that do not reject a row."""

    kind: str
    rows: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)

    @property
    def bad_rows(self) -> list[int]:
        """Distinct 1-based row numbers that have at least one problem."""
        return sorted({p.row for p in self.problems})

    def summary(self, limit: int = 5) -> str:
        """One line naming the first problems and how many there are in all."""
        if not self.problems:
            return f"{self.kind}: {self.rows} rows, no problems"
        shown = "; ".join(str(p) for p in self.problems[:limit])
        more = len(self.problems) - limit
        tail = f"; and {more} more" if more > 0 else ""
        return (
            f"{self.kind}: {len(self.bad_rows)} bad row(s) of {self.rows}: {shown}{tail}"
        )


class ValidationFailed(BadInput):
    """A file was rejected whole; carries the report."""

    code = "validation_failed"

    def __init__(self, report: ValidationReport, hint: str = "") -> None:
        self.report = report
        msg = report.summary()
        if hint:
            msg = f"{msg}. {hint}"
        super().__init__(msg)
