"""The warehouse's one internal error: a statement Snowflake would refuse (or that is outside the supported grammar),
raised to the caller as Snowpark's ``SnowparkSQLException`` by ``session.py``."""

from __future__ import annotations


class SqlError(Exception):
    """A refused statement: ``message`` says why, ``statement`` is the SQL text (bound values are never in it)."""

    def __init__(self, message: str, statement: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.statement = statement


def shortened(statement: str, limit: int = 160) -> str:
    """A statement as an error names it: one line, at most ``limit`` characters."""
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"
