"""The one exception a caller of the landing-zone reader has to handle."""

from __future__ import annotations


class LandingZoneError(Exception):
    """The landing zone cannot be used at all (exit code 2 of `assurance validate`).

    Raised for table-level problems: a missing table or column, a column of the wrong type,
    an unreadable, empty or wrongly encoded/delimited file, mixed timezone offsets. The
    message is one line naming the table, file, column and expectation, and what to do next.
    Row-level problems are never raised: those rows are quarantined instead.
    """

    def __init__(
        self,
        table: str,
        problem: str,
        *,
        file: str | None = None,
        column: str | None = None,
        expectation: str | None = None,
        next_step: str | None = None,
    ) -> None:
        self.table = table
        self.file = file
        self.column = column
        self.expectation = expectation
        self.problem = problem
        self.next_step = next_step
        where = [f"table {table!r}"]
        if file:
            where.append(f"file {file!r}")
        if column:
            where.append(f"column {column!r}")
        parts = [", ".join(where) + ": " + problem]
        if expectation:
            parts.append(f"expected {expectation}")
        if next_step:
            parts.append(f"next: {next_step}")
        # One line, whatever the wrapped engine message contained.
        super().__init__(" ".join("; ".join(parts).split()))
