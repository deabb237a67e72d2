"""The prompt of each row, built inside Snowflake: a text column, or a template over columns.

A template such as ``Summarise: {{review}}`` becomes ``CONCAT(?, COALESCE("review"::VARCHAR, ''), ?)``: its literal
text travels as bind variables (Snowpark ``Session.sql(query, params=[...])``, qmark binding:
https://docs.snowflake.com/en/developer-guide/snowpark/reference/python/latest/snowpark/api/snowflake.snowpark.Session.sql),
never as SQL text, and each column is a double-quoted identifier checked against the input table's columns first.
A NULL column value counts as empty text, so every row has a prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.batch.sql import ROW_ID, quoted

PROMPT = "PROMPT"
_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")


@dataclass(frozen=True)
class PromptSource:
    """Either ``column`` (the prompt is that column's text) or ``template`` (``{{column}}`` placeholders)."""

    column: str | None = None
    template: str | None = None

    def __post_init__(self) -> None:
        if (self.column is None) == (self.template is None):
            raise ConfigurationError("Give either a text column or a prompt template, not both or neither.",
                                     fix="Choose 'Text column' and a column, or 'Prompt template' and a template.")
        if self.template is not None and not _PLACEHOLDER.search(self.template):
            raise ConfigurationError("The prompt template names no column: every row would get the same prompt.",
                                     fix="Put at least one column in the template, e.g. Summarise: {{review}}.")

    def parts(self) -> list[tuple[str, str]]:
        """``("text", literal)`` and ``("column", name)`` in order."""
        if self.column is not None:
            return [("column", self.column)]
        assert self.template is not None
        parts: list[tuple[str, str]] = []
        position = 0
        for match in _PLACEHOLDER.finditer(self.template):
            if match.start() > position:
                parts.append(("text", self.template[position:match.start()]))
            parts.append(("column", match.group(1)))
            position = match.end()
        if position < len(self.template):
            parts.append(("text", self.template[position:]))
        return parts

    def columns(self) -> list[str]:
        return [value for kind, value in self.parts() if kind == "column"]


def resolve_columns(source: PromptSource, table_columns: list[str], table: str) -> PromptSource:
    """The source with each column spelled as the table spells it (exact match first, then case-insensitive);
    an unknown column is refused before anything runs."""
    def resolve(name: str) -> str:
        match = next((c for c in table_columns if c == name), None) or \
            next((c for c in table_columns if c.upper() == name.upper()), None)
        if match is None:
            raise ConfigurationError(
                f"The input table {table} has no column {name!r} (its columns: {', '.join(table_columns)}).",
                fix="Use one of those column names, e.g. {{" + (table_columns[0] if table_columns else "column")
                    + "}} in the template.")
        return match

    if source.column is not None:
        return PromptSource(column=resolve(source.column))
    text = _PLACEHOLDER.sub(lambda m: "{{" + resolve(m.group(1)) + "}}", source.template or "")
    return PromptSource(template=text)


def prompt_expression(source: PromptSource) -> tuple[str, list[Any]]:
    """The SQL value of one row's prompt and the values it binds, in order."""
    pieces: list[str] = []
    params: list[Any] = []
    for kind, value in source.parts():
        if kind == "text":
            pieces.append("?")
            params.append(value)
        else:
            pieces.append(f"COALESCE({quoted(value)}::VARCHAR, '')")
    return (pieces[0] if len(pieces) == 1 else f"CONCAT({', '.join(pieces)})"), params


@dataclass(frozen=True)
class PromptsTable:
    """The input rows numbered, with their prompts, in a temporary table: ``ROW_ID``, the kept input columns,
    ``PROMPT``. Row numbers are fixed once stored (the batch library numbers rows the same way, ``sql.py``).

    Two statements, so that no bind variable is in a DDL statement (Snowflake prepares DML, not DDL: "SQL
    statements supported for preparation", https://docs.snowflake.com/en/user-guide/sql-prepare): the table is
    created empty with the input's column types, then filled by an ``INSERT … SELECT`` that binds the template."""

    name: str
    input_table: str
    keep: tuple[str, ...]
    source: PromptSource

    def create(self) -> str:
        kept = "".join(f"{quoted(column)}, " for column in self.keep)
        return (f"CREATE TEMPORARY TABLE {self.name} AS SELECT 0::NUMBER AS {ROW_ID}, {kept}"
                f"NULL::VARCHAR AS {quoted(PROMPT)} FROM {self.input_table} LIMIT 0")

    def fill(self) -> tuple[str, list[Any]]:
        expression, params = prompt_expression(self.source)
        columns = ", ".join([ROW_ID, *(quoted(column) for column in self.keep), quoted(PROMPT)])
        kept = "".join(f"{quoted(column)}, " for column in self.keep)
        return (f"INSERT INTO {self.name} ({columns}) SELECT ROW_NUMBER() OVER (ORDER BY SEQ8()), {kept}{expression} "
                f"FROM {self.input_table}", params)


def prompt_size(prompts_table: str) -> str:
    """Rows and prompt characters, counted in Snowflake (no row leaves it)."""
    return (f"SELECT COUNT(*) AS ROWS_TOTAL, COALESCE(SUM(LENGTH({quoted(PROMPT)})), 0) AS PROMPT_CHARS "
            f"FROM {prompts_table}")
