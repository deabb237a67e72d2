"""The recipe's output table: the input columns, the prompt, the reply (or vector), token counts, cost and ERROR,
built in one ``CREATE OR REPLACE TABLE … AS SELECT`` from the prompts and the scored rows (no row leaves
Snowflake). Every input row is there: the scoring step gives each row a RESPONSE or its own ERROR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.batch.sql import ROW_ID, quoted
from spcs_llm.recipes.prompts import PROMPT

REPLY, EMBEDDING, PROMPT_TOKENS, COMPLETION_TOKENS, COST_CREDITS, ERROR_COLUMN = (
    "REPLY", "EMBEDDING", "PROMPT_TOKENS", "COMPLETION_TOKENS", "COST_CREDITS", "ERROR")
NO_ANSWER = "the model returned no answer for this row"


@dataclass(frozen=True)
class OutputColumn:
    name: str
    sql: str  # over the prompts (p) and the scored rows (r)
    dss_type: str  # the DSS schema type written for it
    params: tuple[Any, ...] = ()
    typed_null: str = ""  # the column's type for the empty table, when ``sql`` binds values (DDL binds none)


def result_columns(backend: str, task: str, rates: tuple[float, float] | None) -> list[OutputColumn]:
    """What each model kind returns. SPCS chat models answer an OpenAI chat completion (``deploy/batch``'s
    ``answers_query``); Cortex's detailed output names the reply ``choices[0].messages`` (inferred, see
    ``cortex_run.model_call``). Cost per row only for Cortex with known rates: an SPCS pool bills hours, not rows
    (its run estimate is in the log)."""
    if task == "embedding":
        return [OutputColumn(EMBEDDING, "r.RESPONSE", "object" if backend == "spcs" else "array")]
    reply = "message:content" if backend == "spcs" else "messages"
    columns = [OutputColumn(REPLY, f"r.RESPONSE:choices[0]:{reply}::VARCHAR", "string"),
               OutputColumn(PROMPT_TOKENS, "r.RESPONSE:usage:prompt_tokens::NUMBER", "bigint"),
               OutputColumn(COMPLETION_TOKENS, "r.RESPONSE:usage:completion_tokens::NUMBER", "bigint")]
    if backend == "cortex" and rates is not None:
        columns.append(OutputColumn(
            COST_CREDITS, "(r.RESPONSE:usage:prompt_tokens * ? + r.RESPONSE:usage:completion_tokens * ?) / 1000000",
            "double", (rates[0], rates[1]), "NULL::FLOAT"))
    return columns


def check_names(input_columns: list[str], produced: list[OutputColumn]) -> None:
    """The recipe writes columns of its own; an input column of the same name would be ambiguous."""
    taken = {PROMPT, ROW_ID, ERROR_COLUMN, *(c.name for c in produced)}
    clashes = [c for c in input_columns if c.upper() in taken]
    if clashes:
        raise ConfigurationError(
            f"The input has column(s) {', '.join(clashes)}, which the recipe writes itself.",
            fix="Rename them in a Prepare recipe before this one (the recipe writes "
                f"{', '.join(sorted(taken - {ROW_ID}))}).")


def _columns(keep: list[str], produced: list[OutputColumn]) -> list[OutputColumn]:
    error = OutputColumn(ERROR_COLUMN, "COALESCE(r.ERROR, CASE WHEN r.RESPONSE IS NULL THEN ? END)", "string",
                         (NO_ANSWER,), "NULL::VARCHAR")
    return ([OutputColumn(c, f"p.{quoted(c)}", "") for c in (*keep, PROMPT)] + produced + [error])


def create_output(output_table: str, prompts: str, scored: str, keep: list[str],
                  produced: list[OutputColumn]) -> tuple[str, str, list[Any]]:
    """The output table created empty with its column types (no bind variable: DDL), then filled in row order
    by one ``INSERT … SELECT`` that binds the rates and the no-answer text."""
    columns = _columns(keep, produced)
    source = f"FROM {scored} r JOIN {prompts} p ON p.{ROW_ID} = r.{ROW_ID}"
    typed = ", ".join(f"{c.typed_null or c.sql} AS {quoted(c.name)}" for c in columns)
    create = f"CREATE OR REPLACE TABLE {output_table} AS SELECT {typed} {source} LIMIT 0"
    names = ", ".join(quoted(c.name) for c in columns)
    fill = (f"INSERT INTO {output_table} ({names}) SELECT {', '.join(c.sql for c in columns)} {source} "
            f"ORDER BY r.{ROW_ID}")
    return create, fill, [value for c in columns for value in c.params]


def summary(output_table: str) -> str:
    return f"SELECT COUNT(*) AS ROWS_TOTAL, COUNT({quoted(ERROR_COLUMN)}) AS ROWS_FAILED FROM {output_table}"


def dss_schema(keep: list[str], input_schema: list[dict[str, Any]],
               produced: list[OutputColumn]) -> list[dict[str, Any]]:
    """The output dataset's schema (``Dataset.write_schema``): the kept input columns with their DSS types."""
    types = {str(column.get("name")): column.get("type", "string") for column in input_schema}
    return ([{"name": c, "type": types.get(c, "string")} for c in keep] + [{"name": PROMPT, "type": "string"}]
            + [{"name": c.name, "type": c.dss_type} for c in produced] + [{"name": ERROR_COLUMN, "type": "string"}])
