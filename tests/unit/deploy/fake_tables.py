"""The fake account's tables, one registry shared by every fake module (fake_jobs.py reads training pairs from it,
fake_batch.py reads inputs and writes outputs), so a test or the notebook's account declares each table once.

Tables live on the ``FakeAccount`` (as ``account.tables``), keyed by their fully qualified name, unquoted and
upper-cased; a name without database or schema is in the account's current ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fake_snowflake import FakeAccount, _unquote

TEXT = "VARCHAR(16777216)"  # what Snowflake reports for a VARCHAR declared without a length


@dataclass
class FakeTable:
    columns: dict[str, str]  # column name, as Snowflake spells it → its type
    rows: list[dict[str, Any]] = field(default_factory=list)


def tables(account: FakeAccount) -> dict[str, FakeTable]:
    """The account's table registry (created on first use)."""
    registry = getattr(account, "tables", None)
    if registry is None:
        registry = {}
        account.tables = registry  # type: ignore[attr-defined]
    return registry


def table_key(account: FakeAccount, name: str) -> str:
    """``DB.SCHEMA.TABLE`` for a one-, two- or three-part name, as the account resolves it."""
    parts = [_unquote(part) for part in name.split(".")]
    defaults = [account.database, account.schema]
    return ".".join(defaults[: 3 - len(parts)] + parts)


def find_table(account: FakeAccount, name: str) -> FakeTable | None:
    return tables(account).get(table_key(account, name))


def add_table(account: FakeAccount, name: str, columns: dict[str, str] | list[str],
              rows: Iterable[dict[str, Any]] = ()) -> FakeTable:
    """Create (or replace) a table; columns given as a list are text columns."""
    typed = dict(columns) if isinstance(columns, dict) else {column: TEXT for column in columns}
    table = FakeTable(typed, [dict(row) for row in rows])
    tables(account)[table_key(account, name)] = table
    return table
