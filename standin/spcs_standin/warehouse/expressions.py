"""Snowflake expressions and query bodies → DuckDB SQL, for the constructs the recipe's Cortex path sends and no more.

Translated (sources in each comment): identifiers (folded, then quoted for DuckDB), table references (to the
catalog's DuckDB names), ``?`` binds (counted), ``::`` casts (types mapped by ``duck_type``), VARIANT paths
(``col:key[0].key:key``), ``name => value`` arguments, and the functions in ``_FUNCTIONS`` plus ``CONCAT``,
``SEQ8``, ``OBJECT_CONSTRUCT``, ``TO_VARIANT``, ``AI_COMPLETE`` and ``AI_EMBED``. Any other function, keyword or
syntax is refused with an error naming it: nothing outside this grammar reaches DuckDB unread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from spcs_standin.warehouse.ai_calls import AI_SIGNATURES, ai_call
from spcs_standin.warehouse.errors import SqlError, shortened
from spcs_standin.warehouse.lexer import Token, folded

if TYPE_CHECKING:
    from spcs_standin.warehouse.catalog import Table

KEYWORDS = {"SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "NULL", "TRUE", "FALSE", "CASE", "WHEN", "THEN",
            "ELSE", "END", "JOIN", "INNER", "LEFT", "OUTER", "ON", "BETWEEN", "IS", "IN", "EXISTS", "LIMIT", "ORDER",
            "BY", "ASC", "DESC", "OVER", "PARTITION", "DISTINCT", "GROUP", "HAVING", "VALUES"}
# Functions DuckDB runs with Snowflake's meaning for the argument types used here (LENGTH counts characters in
# both; COUNT/SUM/COALESCE/ROW_NUMBER are standard SQL).
_FUNCTIONS = {"COUNT", "SUM", "MIN", "MAX", "LENGTH", "COALESCE", "ROW_NUMBER", "UPPER", "LOWER"}
_ARITHMETIC = ("*", "/", "+", "-")


def duck_type(name: str, size: list[int]) -> str:
    """A Snowflake type as DuckDB stores it ("Summary of data types",
    https://docs.snowflake.com/en/sql-reference/intro-summary-data-types): NUMBER defaults to (38, 0) and INT is
    NUMBER(38, 0); FLOAT/DOUBLE/REAL are 64-bit; VARIANT, OBJECT and ARRAY hold JSON. Not enforced here: a
    VARCHAR(n) length limit (DuckDB ignores it)."""
    upper = name.upper()
    if upper in ("NUMBER", "NUMERIC", "DECIMAL"):
        precision, scale = (size + [38, 0][len(size):])[:2] if size else (38, 0)
        return f"DECIMAL({precision},{scale})"
    if upper in ("INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT") and not size:
        return "DECIMAL(38,0)"
    if upper in ("FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "REAL") and not size:
        return "DOUBLE"
    if upper in ("VARCHAR", "STRING", "TEXT") and len(size) <= 1:
        return "VARCHAR"
    if upper == "BOOLEAN" and not size:
        return "BOOLEAN"
    if upper in ("VARIANT", "OBJECT", "ARRAY") and not size:
        return "JSON"
    raise SqlError(f"The stand-in warehouse does not support the type {name}{size or ''}.")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class Scope:
    """What one statement refers to, for the exact-name check run once the whole statement is read."""

    tables: list[Table] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # aliases and the names the statement itself gives
    references: list[list[tuple[str, Token]]] = field(default_factory=list)  # identifier chains, folded
    aliases: dict[str, Table] = field(default_factory=dict)  # the table each alias (or unaliased name) stands for
    params: int = 0
    ai_calls: list[str] = field(default_factory=list)
    ai_models: list[tuple[str, str | int]] = field(default_factory=list)  # function, model name or bind index
    paths: list[tuple[str, Token]] = field(default_factory=list)  # columns read with a VARIANT path


class TableResolver(Protocol):
    """The session's view of the catalog (``session.py``): its current database and schema, its temporary tables."""

    def table(self, parts: list[str]) -> Table: ...

    def key(self, parts: list[str]) -> tuple[str, str, str]: ...

    def new_table(self, key: tuple[str, str, str], temporary: bool) -> Table: ...

    def existing(self, key: tuple[str, str, str], temporary: bool) -> Table | None: ...


class Translator:
    """Translates a token range; records what it references in ``scope``."""

    def __init__(self, tokens: list[Token], statement: str, resolver: TableResolver, scope: Scope) -> None:
        self.tokens = tokens
        self.statement = statement
        self.resolver = resolver
        self.scope = scope

    def fail(self, message: str) -> SqlError:
        if message.startswith("The stand-in warehouse does not support"):
            message += f" (in: {shortened(self.statement)})"
        return SqlError(message, self.statement)

    def at(self, i: int) -> Token | None:
        return self.tokens[i] if i < len(self.tokens) else None

    def closing(self, i: int) -> int:
        """The index of the ``)`` matching the ``(`` at ``i``."""
        depth = 0
        for j in range(i, len(self.tokens)):
            if self.tokens[j].is_op("("):
                depth += 1
            elif self.tokens[j].is_op(")"):
                depth -= 1
                if depth == 0:
                    return j
        raise self.fail("SQL compilation error: unbalanced parentheses.")

    def arguments(self, open_at: int, close_at: int) -> list[tuple[int, int]]:
        """Top-level comma-separated ranges between the parentheses at ``open_at`` and ``close_at``."""
        ranges, depth, start = [], 0, open_at + 1
        for j in range(open_at + 1, close_at):
            token = self.tokens[j]
            depth += token.is_op("(") - token.is_op(")")
            if depth == 0 and token.is_op(","):
                ranges.append((start, j))
                start = j + 1
        if start < close_at or ranges:
            ranges.append((start, close_at))
        if any(a == b for a, b in ranges):
            raise self.fail("SQL compilation error: an empty function argument.")
        return ranges

    def range(self, start: int, end: int) -> str:
        out: list[str] = []
        i = start
        while i < end:
            piece, i = self.item(i, end, out)
            out.append(piece)
        return " ".join(out)

    def item(self, i: int, end: int, out: list[str]) -> tuple[str, int]:
        token = self.tokens[i]
        if token.kind == "word" and token.upper in KEYWORDS:
            if token.upper in ("FROM", "JOIN"):
                reference, after = self.table_reference(i + 1, end)
                return f"{token.upper} {reference}", after
            alias = self.at(i + 1)
            if token.upper == "AS" and alias is not None and i + 1 < end and alias.kind in ("word", "quoted"):
                self.scope.names.add(folded(alias))  # a name the statement gives, not a reference
                return f"AS {quote(folded(alias))}", i + 2
            if token.upper in ("NULL", "TRUE", "FALSE"):
                return self.postfix(token.upper, i + 1, end, None, out)
            return token.upper, i + 1
        if token.kind == "word" and (following := self.at(i + 1)) is not None and following.is_op("("):
            return self.postfix(*self.function(i), end, None, out)
        if token.kind in ("word", "quoted"):
            return self.column(i, end, out)
        if token.kind == "string":
            return self.postfix(literal(token.text), i + 1, end, None, out)
        if token.kind == "number":
            return self.postfix(token.text, i + 1, end, None, out)
        if token.kind == "param":
            self.scope.params += 1
            return self.postfix("?", i + 1, end, None, out)
        if token.is_op("::"):
            raise self.fail(f"SQL compilation error: unexpected '::' at position {token.position}.")
        if token.is_op(":", "=>", "[", "]", ";"):
            raise self.fail(f"The stand-in warehouse does not support {token.text!r} at position {token.position} "
                            "in this place.")
        if token.is_op(")"):
            return self.postfix(")", i + 1, end, None, out)
        return token.text, i + 1

    # --- identifiers, paths and casts ---------------------------------------------------------------------------

    def chain(self, i: int) -> tuple[list[Token], int]:
        parts = [self.tokens[i]]
        while (dot := self.at(i + 1)) is not None and dot.is_op(".") and (name := self.at(i + 2)) is not None \
                and name.kind in ("word", "quoted"):
            parts.append(name)
            i += 2
        return parts, i + 1

    def column(self, i: int, end: int, out: list[str]) -> tuple[str, int]:
        parts, i = self.chain(i)
        self.scope.references.append([(folded(part), part) for part in parts])
        sql = ".".join(quote(folded(part)) for part in parts)
        path, i = self.path(i, end)
        if path is not None:
            self.scope.paths.append((folded(parts[-1]), parts[-1]))
        return self.postfix(sql, i, end, path, out)

    def path(self, i: int, end: int) -> tuple[str | None, int]:
        """A VARIANT path after a column: ``:key`` first, then ``:key``, ``.key`` or ``[n]``; element names are
        case-sensitive, as written ("Querying semi-structured data",
        https://docs.snowflake.com/en/user-guide/querying-semistructured)."""
        token = self.at(i)
        if token is None or i >= end or not token.is_op(":"):
            return None, i
        steps = "$"
        while i < end and (token := self.tokens[i]).is_op(":", ".", "["):
            name = self.at(i + 1)
            if token.is_op("[") and name is not None and name.kind == "number" and (shut := self.at(i + 2)) \
                    is not None and shut.is_op("]"):
                steps += f"[{int(name.text)}]"
                i += 3
            elif not token.is_op("[") and name is not None and name.kind in ("word", "quoted"):
                steps += "." + json.dumps(name.text)
                i += 2
            else:
                raise self.fail(f"The stand-in warehouse does not support this path at position {token.position}.")
        return steps, i

    def postfix(self, sql: str, i: int, end: int, path: str | None, out: list[str]) -> tuple[str, int]:
        token = self.at(i)
        if token is not None and i < end and token.is_op("::"):
            name = self.at(i + 1)
            if name is None or name.kind != "word":
                raise self.fail(f"SQL compilation error: a type must follow '::' at position {token.position}.")
            target = duck_type(name.text, [])
            if path is not None:
                extracted = f"json_extract_string({sql}, {literal(path)})"
                if target == "JSON":
                    return f"json_extract({sql}, {literal(path)})", i + 2
                return (extracted if target == "VARCHAR" else f"CAST({extracted} AS {target})"), i + 2
            return f"{sql}::{target}", i + 2
        if path is None:
            return sql, i
        following = self.at(i)
        if (following is not None and i < end and following.is_op(*_ARITHMETIC)) or (out and out[-1] in _ARITHMETIC):
            # Inferred: Snowflake casts a VARIANT operand of arithmetic to a number (its "Data type conversion" table
            # lists VARIANT → NUMBER/FLOAT as coercible); a value that is no number fails the statement, as here.
            return f"CAST(json_extract_string({sql}, {literal(path)}) AS DOUBLE)", i
        return f"json_extract({sql}, {literal(path)})", i

    # --- table references --------------------------------------------------------------------------------------

    def table_reference(self, i: int, end: int) -> tuple[str, int]:
        token = self.at(i)
        if token is None or token.kind not in ("word", "quoted") or token.upper in KEYWORDS:
            if token is not None and token.is_op("("):
                raise self.fail("The stand-in warehouse does not support subqueries in FROM.")
            raise self.fail("SQL compilation error: a table name must follow FROM / JOIN.")
        parts, i = self.chain(i)
        table = self.resolver.table([folded(part) for part in parts])
        self.scope.tables.append(table)
        sql = table.duck_name
        alias = self.at(i)
        if alias is not None and i < end and alias.is_word("AS"):
            i += 1
            alias = self.at(i)
            if alias is None or alias.kind not in ("word", "quoted"):
                raise self.fail("SQL compilation error: an alias must follow AS.")
        if alias is not None and i < end and alias.kind in ("word", "quoted") and alias.upper not in KEYWORDS:
            self.scope.names.add(folded(alias))
            self.scope.aliases[folded(alias)] = table
            return f"{sql} AS {quote(folded(alias))}", i + 1
        # Unaliased, the table is referenced by its own name (its last part) in the statement.
        self.scope.names.add(table.key[2])
        self.scope.aliases[table.key[2]] = table
        return f"{sql} AS {quote(table.key[2])}", i

    # --- functions -----------------------------------------------------------------------------------------------

    def function(self, i: int) -> tuple[str, int]:
        name = self.tokens[i].upper
        close = self.closing(i + 1)
        ranges = self.arguments(i + 1, close)
        if name in AI_SIGNATURES:
            return ai_call(self, name, ranges), close + 1
        if any(self.tokens[a].kind == "word" and (arrow := self.at(a + 1)) is not None and arrow.is_op("=>")
               for a, _b in ranges):
            raise self.fail(f"SQL compilation error: {name} takes no named arguments.")
        args = [self.range(a, b) for a, b in ranges]
        if name in _FUNCTIONS:
            return f"{name}({', '.join(args)})", close + 1
        if name == "CONCAT" and args:
            # CONCAT is NULL when any argument is NULL (https://docs.snowflake.com/en/sql-reference/functions/concat);
            # DuckDB's concat skips NULLs, its || operator does not.
            return "(" + " || ".join(f"CAST({a} AS VARCHAR)" for a in args) + ")", close + 1
        if name == "SEQ8" and not args:
            # SEQ8() numbers the rows of its query (https://docs.snowflake.com/en/sql-reference/functions/seq1);
            # the recipe orders by it to keep scan order, which a DuckDB table's rowid gives.
            return "rowid", close + 1
        if name == "OBJECT_CONSTRUCT" and len(args) % 2 == 0:
            # Deviation: OBJECT_CONSTRUCT drops a key whose value is NULL
            # (https://docs.snowflake.com/en/sql-reference/functions/object_construct); json_object keeps it as JSON
            # null. The one reader here, AI_COMPLETE's model_parameters, treats a null as absent (ai_calls.py).
            return f"json_object({', '.join(args)})", close + 1
        if name == "TO_VARIANT" and len(args) == 1:
            return f"to_json({args[0]})", close + 1
        raise self.fail(f"The stand-in warehouse does not support the function {name} with {len(args)} "
                        "argument(s).")

    def check_names(self, own: set[str]) -> None:
        """Quoted identifiers are case-sensitive in Snowflake; DuckDB would bind any case, so each reference is
        checked here first and one that matches a name only in another case is refused, as Snowflake refuses it
        ("invalid identifier", error 000904). A qualified ``alias.column`` must spell a column of that alias's
        table exactly; an unqualified name must spell exactly a column of some table the statement reads or writes,
        an alias, or a name the statement gives (``AS``, a column definition). Not checked: which of several joined
        tables an unqualified name belongs to (DuckDB binds it, or refuses it as ambiguous), and in which clause an
        ``AS`` name is used. A reference matching no name in any case is left to DuckDB, which refuses it."""
        known = set(own) | self.scope.names
        for table in self.scope.tables:
            known.update(table.column_names())
        for chain in self.scope.references:
            qualifier = self.scope.aliases.get(chain[0][0]) if len(chain) == 2 else None
            names = set(qualifier.column_names()) if qualifier is not None else known
            for name, token in chain[1:] if qualifier is not None else chain:
                if name not in names and name.lower() in {known_name.lower() for known_name in names}:
                    raise self.fail(f"SQL compilation error: error line 1 at position {token.position} invalid "
                                    f"identifier '{quote(name)}'")
        for name, token in self.scope.paths:
            # A path reads a VARIANT, OBJECT or ARRAY (GET_PATH, https://docs.snowflake.com/en/sql-reference/
            # functions/get_path); DuckDB's json_extract would parse a VARCHAR too, so that is refused here.
            types = {kind for table in self.scope.tables for column, kind in table.columns if column == name}
            if types and "JSON" not in types:
                raise self.fail(f"SQL compilation error: error line 1 at position {token.position} Invalid argument "
                                f"types for function 'GET_PATH': column {quote(name)} is not a VARIANT.")
