"""The statement grammar of the stand-in warehouse; anything else is refused with an error naming the statement.

    SELECT …
    INSERT INTO <table> [(<column>, …)] { SELECT … | VALUES (…), … }
    CREATE [OR REPLACE] [TEMPORARY | TEMP] TABLE [IF NOT EXISTS] <table> { (<column> <type>, …) | AS SELECT … }
    DROP TABLE [IF EXISTS] <table>
    SHOW COLUMNS IN TABLE <table>

Rules Snowflake applies, followed here:

- one statement per call: Snowpark's ``Session.sql`` runs one, and several are refused unless the statement count
  is set ("Executing multiple statements in a request",
  https://docs.snowflake.com/en/developer-guide/sql-api/submitting-multiple-statements; a trailing ``;`` is fine);
- bind variables only in DML: Snowflake prepares SELECT, INSERT, UPDATE, DELETE, MERGE… but no DDL
  ("SQL statements supported for preparation", https://docs.snowflake.com/en/user-guide/sql-prepare);
- as many bound values as ``?``: too few is Snowflake's "Bind variable ? not set" (error 002049); too many is
  refused too (inferred and stricter: the connector does not document what it does with the extra values);
- ``CREATE TABLE`` of an existing table without ``OR REPLACE`` / ``IF NOT EXISTS`` fails ("already exists").
"""

from __future__ import annotations

from dataclasses import dataclass

from spcs_standin.warehouse.catalog import Table
from spcs_standin.warehouse.errors import SqlError, shortened
from spcs_standin.warehouse.expressions import Scope, TableResolver, Translator, duck_type, quote
from spcs_standin.warehouse.lexer import Token, folded, tokenize


@dataclass
class Plan:
    """One statement, ready to run: its DuckDB SQL and what it does to the catalog."""

    kind: str  # "select", "insert", "create", "drop", "show"
    sql: str = ""
    target: Table | None = None  # insert / drop / show: the table; create: the new table
    replace: Table | None = None  # create: the table it replaces
    exists_ok: bool = False  # create IF NOT EXISTS / drop IF EXISTS
    table_key: tuple[str, str, str] | None = None  # drop IF EXISTS of a missing table
    ai_calls: tuple[str, ...] = ()
    ai_models: tuple[tuple[str, str | int], ...] = ()  # function, model name or the index of its bound value


class Statement:
    """Parses one statement against the session's view of the catalog (``resolver``)."""

    def __init__(self, sql: str, resolver: TableResolver) -> None:
        self.text = sql
        self.resolver = resolver
        try:
            tokens = tokenize(sql)
        except SqlError as error:
            first = sql.split(None, 1)[0].upper() if sql.split() else ""
            if first not in ("SELECT", "INSERT", "CREATE", "DROP", "SHOW"):
                raise self.unsupported() from None
            raise self.fail(f"{error.message}: {shortened(sql)}") from None
        if tokens and tokens[-1].is_op(";"):
            tokens = tokens[:-1]
        if any(token.is_op(";") for token in tokens):
            raise self.fail("Actual statement count 2 did not match the desired statement count 1.")
        if not tokens:
            raise self.fail("SQL compilation error: empty SQL statement.")
        self.tokens = tokens
        self.scope = Scope()
        self.translator = Translator(tokens, sql, resolver, self.scope)

    def fail(self, message: str) -> SqlError:
        return SqlError(message, self.text)

    def unsupported(self) -> SqlError:
        return self.fail(f"The stand-in warehouse does not support this statement: {shortened(self.text)}")

    def at(self, i: int) -> Token | None:
        return self.tokens[i] if i < len(self.tokens) else None

    def words(self, i: int, *words: str) -> bool:
        return all((token := self.at(i + n)) is not None and token.is_word(word) for n, word in enumerate(words))

    def name(self, i: int) -> tuple[list[str], int]:
        token = self.at(i)
        if token is None or token.kind not in ("word", "quoted"):
            raise self.unsupported()
        parts, end = self.translator.chain(i)
        return [folded(part) for part in parts], end

    @property
    def binds(self) -> int:
        return sum(token.kind == "param" for token in self.tokens)

    def check_binds(self, given: int, ddl: bool) -> None:
        if ddl and self.binds:
            raise self.fail("Bind variables are not allowed in DDL statements: Snowflake prepares DML only "
                            f"(https://docs.snowflake.com/en/user-guide/sql-prepare): {shortened(self.text)}")
        if self.binds > given:
            raise self.fail(f"SQL compilation error: Bind variable ? not set ({self.binds} '?' and {given} "
                            f"value(s)): {shortened(self.text)}")
        if self.binds < given:
            raise self.fail(f"{given} values bound to {self.binds} '?': {shortened(self.text)}")

    # --- the statements -------------------------------------------------------------------------------------------

    def plan(self, given: int) -> Plan:
        first = self.tokens[0]
        ddl = first.is_word("CREATE", "DROP", "SHOW")
        self.check_binds(given, ddl)
        if first.is_word("SELECT"):
            plan = Plan("select", self.query(0))
        elif first.is_word("INSERT") and self.words(1, "INTO"):
            plan = self.insert()
        elif first.is_word("CREATE"):
            plan = self.create()
        elif first.is_word("DROP") and self.words(1, "TABLE"):
            plan = self.drop()
        elif self.words(0, "SHOW", "COLUMNS", "IN", "TABLE"):
            parts, end = self.name(4)
            if end != len(self.tokens):
                raise self.unsupported()
            plan = Plan("show", target=self.resolver.table(parts))
        else:
            raise self.unsupported()
        plan.ai_calls = tuple(self.scope.ai_calls)
        plan.ai_models = tuple(self.scope.ai_models)
        return plan

    def query(self, start: int, own: set[str] | None = None) -> str:
        token = self.at(start)
        if token is None or not token.is_word("SELECT", "VALUES"):
            raise self.unsupported()
        sql = self.translator.range(start, len(self.tokens))
        self.translator.check_names(own or set())
        return sql

    def insert(self) -> Plan:
        parts, i = self.name(2)
        table = self.resolver.table(parts)
        self.scope.tables.append(table)
        columns = ""
        token = self.at(i)
        if token is not None and token.is_op("("):
            close = self.translator.closing(i)
            names = []
            for a, b in self.translator.arguments(i, close):
                if b - a != 1 or self.tokens[a].kind not in ("word", "quoted"):
                    raise self.unsupported()
                names.append(folded(self.tokens[a]))
                self.scope.references.append([(names[-1], self.tokens[a])])
            columns = f" ({', '.join(quote(name) for name in names)})"
            i = close + 1
        return Plan("insert", f"INSERT INTO {table.duck_name}{columns} {self.query(i)}", target=table)

    def create(self) -> Plan:
        i, replace, temporary = 1, False, False
        if self.words(i, "OR", "REPLACE"):
            replace, i = True, i + 2
        if self.words(i, "TEMPORARY") or self.words(i, "TEMP"):
            temporary, i = True, i + 1
        if not self.words(i, "TABLE"):
            raise self.unsupported()
        i += 1
        exists_ok = self.words(i, "IF", "NOT", "EXISTS")
        if exists_ok:
            i += 3
        if exists_ok and replace:
            raise self.fail("SQL compilation error: OR REPLACE and IF NOT EXISTS cannot be used together.")
        parts, i = self.name(i)
        key = self.resolver.key(parts)
        old = self.resolver.existing(key, temporary)
        if old is not None and not (replace or exists_ok):
            raise self.fail(f"SQL compilation error: Object '{'.'.join(key)}' already exists.")
        new = self.resolver.new_table(key, temporary)
        token = self.at(i)
        if token is not None and token.is_op("("):
            body = self.columns(i)
        elif token is not None and token.is_word("AS"):
            body = f"AS {self.query(i + 1)}"
        else:
            raise self.unsupported()
        return Plan("create", f"CREATE TABLE {new.duck_name} {body}", target=new, replace=old, exists_ok=exists_ok)

    def columns(self, i: int) -> str:
        close = self.translator.closing(i)
        if close != len(self.tokens) - 1:
            raise self.unsupported()
        definitions, seen = [], set()
        for a, b in self.translator.arguments(i, close):
            name, type_name = self.tokens[a], self.at(a + 1)
            if name.kind not in ("word", "quoted") or type_name is None or type_name.kind != "word":
                raise self.unsupported()
            size = [int(t.text) for t in self.tokens[a + 2:b] if t.kind == "number"]
            shape = "".join(t.text for t in self.tokens[a + 2:b])
            if shape not in ("", f"({size[0] if size else ''})", f"({','.join(map(str, size))})"):
                raise self.fail(f"The stand-in warehouse does not support this column definition: "
                                f"{shortened(self.text[name.position:])}")
            column = folded(name)
            if column in seen:
                raise self.fail(f"SQL compilation error: duplicate column name '{column}'")
            seen.add(column)
            definitions.append(f"{quote(column)} {duck_type(type_name.text, size)}")
        return f"({', '.join(definitions)})"

    def drop(self) -> Plan:
        i, exists_ok = 2, self.words(2, "IF", "EXISTS")
        if exists_ok:
            i += 2
        parts, end = self.name(i)
        if end != len(self.tokens):
            raise self.unsupported()
        try:
            return Plan("drop", target=self.resolver.table(parts), exists_ok=exists_ok)
        except SqlError:
            if not exists_ok:
                raise
            return Plan("drop", exists_ok=True, table_key=self.resolver.key(parts))
