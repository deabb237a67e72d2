"""Cortex over a table, inside Snowflake: ``AI_COMPLETE`` / ``AI_EMBED`` in ``INSERT … SELECT`` statements.

Signatures (Snowflake docs): ``AI_COMPLETE(<model>, <prompt> [, <model_parameters>, <response_format>,
<show_details>])``, positional or named arguments, ``model_parameters`` an object with ``temperature`` and
``max_tokens`` (default 4096) — https://docs.snowflake.com/en/sql-reference/functions/ai_complete-single-string;
``AI_EMBED(<model>, <input>)`` returns a VECTOR — https://docs.snowflake.com/en/sql-reference/functions/ai_embed.

Per-row errors: like the service-function path of ``spcs-llm batch`` (``deploy/batch/run.py``), rows are scored in
chunks and a failing chunk is halved until the failing row is alone, which then gets its own ERROR; this does not
depend on whether a TRY_ variant exists for a function. Every value (model name, parameters, row bounds, error
texts) is a bind variable; the prompts were built in SQL beforehand (``prompts.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import redact
from spcs_llm.cortex.cost import CORTEX_CREDITS_PER_MILLION, CORTEX_RATES_AS_OF
from spcs_llm.deploy.batch.sql import ERROR, RESPONSE, ROW_ID, BatchTables, quoted
from spcs_llm.recipes.prompts import PROMPT
from spcs_llm.recipes.settings import RecipeSettings

AI_COMPLETE_DEFAULT_MAX_TOKENS = 4096  # the documented default of model_parameters.max_tokens
CHARS_PER_TOKEN = 4  # inferred: about 4 characters per token for English text (as `spcs-llm cortex-finetune`)


def model_call(settings: RecipeSettings) -> tuple[str, list[Any]]:
    """The function call for one row's ``PROMPT`` and the values it binds.

    Chat: ``show_details => TRUE`` returns an object with the reply and token usage (inferred: the shape of
    COMPLETE's detailed output, ``choices[0].messages`` and ``usage.prompt_tokens`` / ``completion_tokens``;
    ``output.py`` reads those paths). Embedding: the VECTOR is stored as an ARRAY in the VARIANT column (inferred:
    ``VECTOR::ARRAY`` is an allowed cast). Inferred as well: a bind variable is accepted where these functions
    need a constant (the model name, the parameters)."""
    prompt = quoted(PROMPT)
    if settings.task == "embedding":
        return f"TO_VARIANT(AI_EMBED(?, {prompt})::ARRAY)", [settings.cortex_model]
    options: list[str] = []
    params: list[Any] = [settings.cortex_model]
    for key, value in (("temperature", settings.temperature), ("max_tokens", settings.max_tokens)):
        if value is not None:
            options.append(f"'{key}', ?")
            params.append(value)
    parameters = f", model_parameters => OBJECT_CONSTRUCT({', '.join(options)})" if options else ""
    return f"AI_COMPLETE(model => ?, prompt => {prompt}{parameters}, show_details => TRUE)", params


def _insert(tables: BatchTables) -> str:
    return f"INSERT INTO {tables.output_table} ({ROW_ID}, {quoted(PROMPT)}, {RESPONSE}, {ERROR})"


def scored_rows(tables: BatchTables, call: str) -> str:
    return (f"{_insert(tables)} SELECT {ROW_ID}, {quoted(PROMPT)}, {call}, NULL FROM {tables.numbered_table} "
            f"WHERE {ROW_ID} BETWEEN ? AND ?")


def model_check(tables: BatchTables, call: str) -> str:
    """The model call over no row: Snowflake compiles it, checking the model and its parameters, and no token is
    billed. Inferred: a function's constant arguments are checked at compile time even when no row is read; where
    they are not, nothing is lost, the rows then fail one by one as before."""
    return f"SELECT {call} AS {RESPONSE} FROM {tables.numbered_table} WHERE {ROW_ID} < 0"


def error_row(tables: BatchTables) -> str:
    return (f"{_insert(tables)} SELECT {ROW_ID}, {quoted(PROMPT)}, NULL, ? FROM {tables.numbered_table} "
            f"WHERE {ROW_ID} = ?")


def score_with_cortex(session: Any, tables: BatchTables, settings: RecipeSettings, rows: int,
                      sql_error: type[Exception], report: Callable[[str], None]) -> int:
    """Score every row into ``tables.output_table``; returns how many rows failed on their own."""
    call, call_params = model_call(settings)
    try:  # a wrong model name fails here once, instead of failing every row after halving every chunk
        session.sql(model_check(tables, call), params=call_params).collect()
    except sql_error as exc:
        raise ConfigurationError(
            f"Cortex refused the call to {settings.cortex_model} before any row was scored: {redact(str(exc))[:500]}",
            fix="Check 'Cortex model' (available in your account's region, or a fine-tuned model's full name your "
                "role may use) and its task, 'Max tokens' and 'Temperature'.") from None
    failures: list[int] = []

    def score(first: int, last: int) -> None:
        if len(failures) >= settings.max_failed_rows:
            return
        try:
            session.sql(scored_rows(tables, call), params=[*call_params, first, last]).collect()
        except sql_error as exc:
            if first == last:
                failures.append(first)
                session.sql(error_row(tables), params=[redact(str(exc))[:2000], first]).collect()
                return
            middle = (first + last) // 2
            score(first, middle)
            score(middle + 1, last)

    for first in range(1, rows + 1, settings.chunk_rows):
        last = min(first + settings.chunk_rows - 1, rows)
        score(first, last)
        report(f"{last:,}/{rows:,} rows scored by Cortex {settings.cortex_model}, {len(failures)} failed")
        if len(failures) >= settings.max_failed_rows:
            session.sql(tables.rows_without_result(
                f"not scored: the run stopped after {len(failures)} failing rows")).collect()
            break
    return len(failures)


def _credits(value: float) -> str:
    return "0" if value == 0 else "<0.0001" if value < 0.0001 else f"{value:,.4f}"


@dataclass(frozen=True)
class CortexEstimate:
    """Credits for a Cortex run, before it starts: prompt tokens (counted from characters) and at most
    ``max_tokens`` reply tokens per row, at the model's credits per million tokens."""

    model: str
    rows: int
    prompt_tokens: int
    max_reply_tokens: int  # all rows
    rates: tuple[float, float] | None  # input, output credits per million; None: unknown
    rate_source: str
    dollars_per_credit: float

    @property
    def credits_range(self) -> tuple[float, float] | None:
        if self.rates is None:
            return None
        low = self.prompt_tokens * self.rates[0] / 1e6
        return low, low + self.max_reply_tokens * self.rates[1] / 1e6

    def text(self) -> str:
        head = (f"Estimate (not a quote): {self.rows:,} rows, about {self.prompt_tokens:,} prompt tokens "
                f"(~{CHARS_PER_TOKEN} characters each)")
        if self.max_reply_tokens:
            head += f" and at most {self.max_reply_tokens:,} reply tokens"
        head += f" on Cortex {self.model}."
        credits = self.credits_range
        if credits is None or self.rates is None:
            return head + (f" No price is known for {self.model} (rates {CORTEX_RATES_AS_OF}): cost unknown; set "
                           "'Input/Output credits per million tokens'.")
        dollars = (credits[0] * self.dollars_per_credit, credits[1] * self.dollars_per_credit)
        return head + (f" Cost ≈ {_credits(credits[0])}-{_credits(credits[1])} credits (${dollars[0]:,.2f}"
                       f"-${dollars[1]:,.2f} at ${self.dollars_per_credit:g}/credit; "
                       f"{self.rates[0]:g}/{self.rates[1]:g} credits per million input/output tokens, "
                       f"{self.rate_source}).")


def cortex_rates(settings: RecipeSettings) -> tuple[tuple[float, float] | None, str]:
    """The model's rates: the recipe's own, else the shipped dated table (``cortex/cost.py``)."""
    tabled = CORTEX_CREDITS_PER_MILLION.get(settings.cortex_model.lower())
    given_in, given_out = settings.input_credits_per_million, settings.output_credits_per_million
    if given_in is not None:
        return (given_in, given_out if given_out is not None else (tabled[1] if tabled else given_in)), "as given"
    if tabled is not None:
        return (tabled[0], given_out if given_out is not None else tabled[1]), f"table as of {CORTEX_RATES_AS_OF}"
    return None, ""


def estimate_cortex(settings: RecipeSettings, rows: int, prompt_chars: int) -> CortexEstimate:
    rates, source = cortex_rates(settings)
    reply = 0 if settings.task == "embedding" else rows * (settings.max_tokens or AI_COMPLETE_DEFAULT_MAX_TOKENS)
    return CortexEstimate(settings.cortex_model, rows, math.ceil(prompt_chars / CHARS_PER_TOKEN), reply, rates,
                          source, settings.dollars_per_credit)
