"""The warehouse's tables: Snowflake names (database, schema, table, each exact) mapped to opaque DuckDB tables.

Snowflake keeps identifiers case-sensitive once folded ("Identifier requirements",
https://docs.snowflake.com/en/sql-reference/identifiers-syntax); DuckDB matches them case-insensitively, even
quoted (https://duckdb.org/docs/stable/sql/dialect/keywords_and_identifiers). So tables are looked up here, by
exact name, never by DuckDB, and each DuckDB table has a generated name no statement can spell. Deviation: a table
cannot have two columns whose names differ only in case (``"a"`` and ``"A"``): DuckDB refuses them, Snowflake does not.

A temporary table belongs to its session, and there takes precedence over a permanent table of the same name
("Working with temporary and transient tables",
https://docs.snowflake.com/en/user-guide/tables-temp-transient); other sessions never see it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from spcs_standin.warehouse.errors import SqlError

TableKey = tuple[str, str, str]


@dataclass
class Table:
    key: TableKey
    duck_name: str
    owner: int | None = None  # the session a temporary table belongs to; None: permanent
    columns: list[tuple[str, str]] = field(default_factory=list)  # exact name, DuckDB type, in order

    def column_names(self) -> list[str]:
        return [name for name, _type in self.columns]


class Catalog:
    """Schemas and tables of one warehouse."""

    def __init__(self) -> None:
        self.schemas: set[tuple[str, str]] = set()
        self.permanent: dict[TableKey, Table] = {}
        self.temporary: dict[tuple[int, TableKey], Table] = {}
        self._numbers = itertools.count(1)

    def add_schema(self, database: str, schema: str) -> None:
        self.schemas.add((database, schema))

    def resolve(self, parts: list[str], database: str, schema: str) -> TableKey:
        """``T`` / ``S.T`` / ``D.S.T`` (already folded) → the full key, in the session's database and schema."""
        if not 1 <= len(parts) <= 3:
            raise SqlError(f"SQL compilation error: invalid object name {'.'.join(parts)!r}.")
        full = [database, schema][: 3 - len(parts)] + parts
        return full[0], full[1], full[2]

    def find(self, key: TableKey, session: int) -> Table | None:
        return self.temporary.get((session, key)) or self.permanent.get(key)

    def get(self, key: TableKey, session: int) -> Table:
        table = self.find(key, session)
        if table is None:
            # Snowflake's wording: "Object '<name>' does not exist or not authorized." (error 002003).
            raise SqlError(f"SQL compilation error: Object '{'.'.join(key)}' does not exist or not authorized.")
        return table

    def existing(self, key: TableKey, session: int, temporary: bool) -> Table | None:
        """The table a CREATE of this kind would replace."""
        return self.temporary.get((session, key)) if temporary else self.permanent.get(key)

    def new_table(self, key: TableKey, temporary: bool, session: int) -> Table:
        if key[:2] not in self.schemas:
            raise SqlError(f"SQL compilation error: Schema '{key[0]}.{key[1]}' does not exist or not authorized.")
        return Table(key, f"__warehouse_table_{next(self._numbers)}", session if temporary else None)

    def register(self, table: Table) -> None:
        if table.owner is None:
            self.permanent[table.key] = table
        else:
            self.temporary[(table.owner, table.key)] = table

    def remove(self, table: Table) -> None:
        if table.owner is None:
            self.permanent.pop(table.key, None)
        else:
            self.temporary.pop((table.owner, table.key), None)

    def tables(self) -> list[Table]:
        return [*self.permanent.values(), *self.temporary.values()]
