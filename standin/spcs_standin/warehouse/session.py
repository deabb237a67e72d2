"""A stand-in Snowflake warehouse over DuckDB (https://duckdb.org/docs/stable/clients/python/overview), and the
Snowpark-like sessions that run SQL on it: ``session.sql(statement, params=[...]).collect()`` returns
``snowflake.snowpark.Row`` objects addressed by column name, ``get_current_database()`` / ``get_current_schema()``
return quoted names (as Snowpark's do), and every refusal is Snowpark's ``SnowparkSQLException``.

What comes back, as Snowpark returns it (https://docs.snowflake.com/en/developer-guide/snowpark/python/
working-with-dataframes, "Returning the contents"): NUMBER with scale 0 as ``int``, other NUMBERs as ``Decimal``,
FLOAT as ``float``, VARIANT / OBJECT / ARRAY as their JSON text (deviation: compact, where Snowpark indents it);
DDL answers one ``status`` row and INSERT one ``number of rows inserted`` row. Deviation: a result column without an
alias is named as DuckDB names it (``count_star()``), not as Snowflake does (``COUNT(*)``).
"""

from __future__ import annotations

import itertools
import re
import threading
from decimal import Decimal
from typing import Any

import duckdb
from snowflake.snowpark import Row
from snowflake.snowpark.exceptions import SnowparkSQLException

from spcs_standin.cortex_engines import CortexModels
from spcs_standin.warehouse.catalog import Catalog, Table, TableKey
from spcs_standin.warehouse.cortex_functions import CortexCallError, CortexFunctions, check_model
from spcs_standin.warehouse.errors import SqlError
from spcs_standin.warehouse.statements import Plan, Statement

_UDF_ERROR = re.compile(r"CortexCallError: (.*?)(?:\n\nAt:|$)", re.S)


class Warehouse:
    """One DuckDB database in memory with its catalog and its Cortex functions; sessions share its tables."""

    def __init__(self, database: str = "SPCS_LLM", schema: str = "PUBLIC", models: CortexModels | None = None) -> None:
        self.database, self.schema = database, schema
        self.duck = duckdb.connect(":memory:")
        self.duck.execute("SET threads = 1")  # one row at a time through the models, in scan order
        self.catalog = Catalog()
        self.catalog.add_schema(database, schema)
        self.functions = CortexFunctions(models or CortexModels())
        self.functions.register(self.duck)
        self.lock = threading.RLock()
        self._sessions = itertools.count(1)
        self.statements: list[tuple[str, list[Any]]] = []  # every statement run, with its bound values

    def add_schema(self, database: str, schema: str) -> None:
        self.catalog.add_schema(database, schema)

    def session(self) -> WarehouseSession:
        return WarehouseSession(self, next(self._sessions))

    def table_keys(self) -> list[TableKey]:
        """Every table's name, permanent or temporary (of any session)."""
        return [table.key for table in self.catalog.tables()]


class Query:
    """What ``session.sql`` returns: runs on ``collect()``, as a Snowpark DataFrame of a SQL statement does."""

    def __init__(self, session: WarehouseSession, statement: str, params: list[Any]) -> None:
        self.session, self.statement, self.params = session, statement, params

    def collect(self) -> list[Row]:
        return self.session.run(self.statement, self.params)


class WarehouseSession:
    """A session in the warehouse's current database and schema; its temporary tables are its own."""

    def __init__(self, warehouse: Warehouse, number: int) -> None:
        self.warehouse = warehouse
        self.number = number
        self.database, self.schema = warehouse.database, warehouse.schema

    def sql(self, query: str, params: list[Any] | tuple[Any, ...] | None = None) -> Query:
        return Query(self, query, list(params or []))

    def get_current_database(self) -> str:
        return '"' + self.database.replace('"', '""') + '"'

    def get_current_schema(self) -> str:
        return '"' + self.schema.replace('"', '""') + '"'

    def close(self) -> None:
        """Temporary tables end with their session."""
        with self.warehouse.lock:
            for table in [t for t in self.warehouse.catalog.tables() if t.owner == self.number]:
                self._forget(table)

    # --- the resolver the statements use ----------------------------------------------------------------------

    def key(self, parts: list[str]) -> TableKey:
        return self.warehouse.catalog.resolve(parts, self.database, self.schema)

    def table(self, parts: list[str]) -> Table:
        return self.warehouse.catalog.get(self.key(parts), self.number)

    def new_table(self, key: TableKey, temporary: bool) -> Table:
        return self.warehouse.catalog.new_table(key, temporary, self.number)

    def existing(self, key: TableKey, temporary: bool) -> Table | None:
        return self.warehouse.catalog.existing(key, self.number, temporary)

    # --- running ----------------------------------------------------------------------------------------------

    def run(self, statement: str, params: list[Any]) -> list[Row]:
        with self.warehouse.lock:
            self.warehouse.statements.append((statement, list(params)))
            try:
                plan = Statement(statement, self).plan(len(params))
                for function, model in plan.ai_models:
                    name = params[model] if isinstance(model, int) else model
                    check_model(None if name is None else str(name), "embed" if function == "AI_EMBED" else "chat",
                                function)
                return self._execute(plan, params)
            except (SqlError, CortexCallError) as error:
                raise _sql_exception(str(error), statement) from None
            except duckdb.Error as error:
                raise _sql_exception(_duck_message(error), statement) from None

    def _execute(self, plan: Plan, params: list[Any]) -> list[Row]:
        duck = self.warehouse.duck
        if plan.kind == "show":
            assert plan.target is not None
            return _show_columns(plan.target)
        if plan.kind == "drop":
            if plan.target is None:
                return [Row(status="Drop statement executed successfully (table already dropped).")]
            self._forget(plan.target)
            return [Row(status=f"{plan.target.key[2]} successfully dropped.")]
        if plan.kind == "create":
            assert plan.target is not None
            if plan.replace is not None and plan.exists_ok:
                return [Row(status=f"{plan.replace.key[2]} already exists, statement succeeded.")]
            duck.execute(plan.sql)
            plan.target.columns = [(str(c[0]), str(c[1])) for c in duck.execute(
                f"DESCRIBE {plan.target.duck_name}").fetchall()]
            if plan.replace is not None:
                self._forget(plan.replace)
            self.warehouse.catalog.register(plan.target)
            return [Row(status=f"Table {plan.target.key[2]} successfully created.")]
        cursor = duck.execute(plan.sql, params)
        if plan.kind == "insert":
            (inserted,) = cursor.fetchone() or (0,)
            return [Row(**{"number of rows inserted": int(inserted)})]
        names = [str(column[0]) for column in cursor.description or []]
        maker = Row(*names)
        return [maker(*(_value(v) for v in row)) for row in cursor.fetchall()]

    def _forget(self, table: Table) -> None:
        self.warehouse.duck.execute(f"DROP TABLE IF EXISTS {table.duck_name}")
        self.warehouse.catalog.remove(table)


def _value(value: Any) -> Any:
    if isinstance(value, Decimal) and value.as_tuple().exponent == 0:
        return int(value)
    return value


def _show_columns(table: Table) -> list[Row]:
    """SHOW COLUMNS' output columns (https://docs.snowflake.com/en/sql-reference/sql/show-columns), lower-case
    names as Snowflake gives them; ``data_type`` is a JSON text (deviation: a shorter one)."""
    maker = Row("table_name", "schema_name", "column_name", "data_type", "null?", "default", "kind", "expression",
                "comment", "database_name", "autoincrement")
    kinds = {"DOUBLE": "REAL", "VARCHAR": "TEXT", "JSON": "VARIANT", "BOOLEAN": "BOOLEAN"}
    return [maker(table.key[2], table.key[1], name, '{"type":"%s","nullable":true}' % (
        "FIXED" if duck.startswith("DECIMAL") else kinds.get(duck, duck)), "true", "", "COLUMN", "", "",
        table.key[0], "") for name, duck in table.columns]


def _duck_message(error: duckdb.Error) -> str:
    """DuckDB's message, or the Cortex function's own when a model refused a row."""
    text = str(error)
    found = _UDF_ERROR.search(text)
    if found:
        return found.group(1).strip()
    return f"SQL compilation error: {text.splitlines()[0] if text else type(error).__name__}"


def _sql_exception(message: str, statement: str) -> SnowparkSQLException:
    """Snowpark's error type with Snowflake's message; its ``query`` is the statement (never the bound values)."""
    return SnowparkSQLException(message, query=statement, raw_message=message)
