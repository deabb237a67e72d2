"""Fine-tune a Cortex model from a Snowflake table: checked settings, the ``FINETUNE('CREATE', ...)`` SQL, the estimate.

Everything a user can get wrong (names, base model, epochs, columns) is refused here with its fix before any
statement is sent; the table check and the size count are the only statements before the user confirms the run.
Running, polling and cancelling the job are in ``cortex_finetune_job.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.deploy.batch.sql import literal, qualified_table, quoted, table_parts
from spcs_llm.deploy.names import DeploymentNames, is_identifier

DOCS_URL = "https://docs.snowflake.com/en/user-guide/snowflake-cortex/cortex-finetuning"
CREATE_DOCS_URL = "https://docs.snowflake.com/en/sql-reference/functions/finetune-create"
# Base models FINETUNE('CREATE') accepts, from the FINETUNE ('CREATE') reference page read on this date.
BASE_MODELS_AS_OF = "2026-12-04"
FINETUNE_BASE_MODELS = ("llama3-8b", "llama3-70b", "llama3.1-8b", "llama3.1-70b", "mistral-7b", "mixtral-8x7b")
# The 'max_epochs' option takes "a value from 1 to 10 (inclusive)" (the CREATE reference page, CREATE_DOCS_URL);
# Snowflake picks the number of epochs when the option is left out.
MAX_EPOCHS_LIMIT = 10
# About 4 characters per token: an approximation Snowflake's fine-tuning page states (DOCS_URL, "Cost
# considerations"); the real count depends on the base model's tokenizer, so the estimate says it is one.
CHARS_PER_TOKEN = 4
DEFAULT_DOLLARS_PER_CREDIT = 3.0
_MODEL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # the CREATE page: letters, digits, _, starting with a letter


@dataclass(frozen=True)
class FinetuneRequest:
    """What the user asked for, before any Snowflake call."""

    name: str
    base_model: str
    training_table: str
    prompt_columns: tuple[str, ...] = ("PROMPT",)  # several: joined with a blank line (instruction + input)
    completion_column: str = "COMPLETION"
    validation_table: str | None = None
    max_epochs: int | None = None
    training_credits_per_million: float | None = None
    dollars_per_credit: float = DEFAULT_DOLLARS_PER_CREDIT
    allow_unlisted_base_model: bool = False


@dataclass(frozen=True)
class TableShape:
    """The training table's columns as Snowflake spells them, and its size."""

    table: str
    prompt_columns: tuple[str, ...]
    completion_column: str
    rows: int = 0
    characters: int = 0
    incomplete_rows: int = 0


@dataclass(frozen=True)
class FinetuneEstimate:
    tokens_per_epoch: int
    epochs: int | None
    credits_per_million: float | None
    dollars_per_credit: float

    @property
    def credits(self) -> float | None:
        if self.credits_per_million is None or self.epochs is None:
            return None
        return self.tokens_per_epoch * self.epochs * self.credits_per_million / 1_000_000

    def text(self) -> str:
        tokens = f"about {self.tokens_per_epoch:,} training tokens per epoch (characters / {CHARS_PER_TOKEN})"
        if self.credits_per_million is None:
            return (f"Estimate (not a quote): {tokens}; training cost unknown: give the base model's fine-tuning "
                    "training rate (credits per million tokens, from Snowflake's Service Consumption Table).")
        if self.epochs is None:
            per_epoch = self.tokens_per_epoch * self.credits_per_million / 1_000_000
            return (f"Estimate (not a quote): {tokens} × {self.credits_per_million:g} credits per million = "
                    f"{per_epoch:.4f} credits per epoch; Snowflake chooses the number of epochs "
                    "(set the maximum epochs to bound the total).")
        credits = self.credits or 0.0
        return (f"Estimate (not a quote): {tokens} × {self.epochs} epochs × {self.credits_per_million:g} credits per "
                f"million = {credits:.4f} credits (about ${credits * self.dollars_per_credit:.2f} at "
                f"${self.dollars_per_credit:g}/credit).")


@dataclass(frozen=True)
class FinetunePlan:
    """A checked request against a checked table: the SQL to run and what it will cost."""

    model_fqn: str
    base_model: str
    training: TableShape
    validation: TableShape | None
    max_epochs: int | None
    estimate: FinetuneEstimate

    @property
    def model_name(self) -> str:
        """The tuned model's identifier, as FINETUNE('CREATE') takes it (unqualified)."""
        return self.model_fqn.rsplit(".", 1)[-1]

    @property
    def schema_fqn(self) -> str:
        """``DB.SCHEMA`` whose model registry receives the tuned model."""
        return self.model_fqn.rsplit(".", 1)[0]

    def use_schema_sql(self) -> str:
        """Run before ``create_sql``: the CREATE page saves the tuned model "to the model registry of the schema",
        the session's current one, and takes the name as an identifier (letters, digits, _), not a path."""
        return f"USE SCHEMA {self.schema_fqn}"

    def create_sql(self) -> str:
        """FINETUNE('CREATE', '<name>', '<base_model>', '<training_data_query>' [, '<validation_data_query>'
        [, '<options>']]) as the CREATE reference page documents it (CREATE_DOCS_URL): the name an identifier and
        the options "a string representation of a JSON object" ('{"max_epochs": 3}'). Options without a validation
        query pass NULL in its place, as snowflake-ml's own client does (snowflake/cortex/_finetune.py
        ``Finetune.create`` through ``_util.call_sql_function_literals``, which writes None as NULL)."""
        arguments = ["'CREATE'", literal(self.model_name), literal(self.base_model),
                     literal(training_query(self.training))]
        options = {"max_epochs": self.max_epochs} if self.max_epochs is not None else {}
        if self.validation or options:
            arguments.append(literal(training_query(self.validation)) if self.validation else "NULL")
        if options:
            arguments.append(literal(json.dumps(options)))
        return f"SELECT SNOWFLAKE.CORTEX.FINETUNE({', '.join(arguments)})"


def training_query(shape: TableShape) -> str:
    """The SELECT giving FINETUNE its ``prompt`` and ``completion`` columns (the shape its CREATE page requires);
    rows missing either are left out rather than sent as empty examples."""
    prompt, completion = prompt_expression(shape.prompt_columns), quoted(shape.completion_column)
    return (f"SELECT {prompt} AS prompt, {completion} AS completion FROM {shape.table} "
            f"WHERE {prompt} IS NOT NULL AND {completion} IS NOT NULL")


def prompt_expression(columns: tuple[str, ...]) -> str:
    """One column as is; several (the instruction + input → output shape) joined by a blank line, empty ones left
    out."""
    if len(columns) == 1:
        return quoted(columns[0])
    parts = ", ".join(f"NULLIF(TRIM({quoted(column)}), '')" for column in columns)
    return f"ARRAY_TO_STRING(ARRAY_CONSTRUCT_COMPACT({parts}), CHR(10) || CHR(10))"


def validate(request: FinetuneRequest) -> None:
    """Refuse bad settings before any Snowflake call, each with its fix."""
    if not _MODEL_NAME.match(request.name) or len(request.name) > 255:
        raise ConfigurationError(f"Model name {request.name!r} is not accepted by Cortex fine-tuning.",
                                 fix="Use letters, digits and _ only, starting with a letter, e.g. SUPPORT_TUNED.")
    if request.base_model not in FINETUNE_BASE_MODELS and not request.allow_unlisted_base_model:
        raise ConfigurationError(
            f"Base model {request.base_model!r} cannot be fine-tuned with Cortex (models that can, as of "
            f"{BASE_MODELS_AS_OF}: {', '.join(FINETUNE_BASE_MODELS)}).",
            fix="Pass --base-model with one of those, or --allow-unlisted-base-model if Snowflake added it since.")
    table_parts(request.training_table, "Training table")
    if request.validation_table:
        table_parts(request.validation_table, "Validation table")
    for column in (*request.prompt_columns, request.completion_column):
        if not is_identifier(column):
            raise ConfigurationError(f"Column {column!r} is not a column name this command accepts.",
                                     fix="Pass unquoted column names (letters, digits, _, $).")
    if not request.prompt_columns:
        raise ConfigurationError("No prompt column given.", fix="Pass --prompt-column (or --prompt-columns A,B).")
    if request.max_epochs is not None and not 1 <= request.max_epochs <= MAX_EPOCHS_LIMIT:
        raise ConfigurationError(f"--max-epochs must be 1 to {MAX_EPOCHS_LIMIT}, not {request.max_epochs}.",
                                 fix=f"Pass --max-epochs between 1 and {MAX_EPOCHS_LIMIT}, or leave it out.")
    if request.training_credits_per_million is not None and request.training_credits_per_million <= 0:
        raise ConfigurationError("--training-credits-per-million must be above 0.",
                                 fix="Pass the rate from Snowflake's Service Consumption Table, or leave it out.")
    if request.dollars_per_credit <= 0:
        raise ConfigurationError("--dollars-per-credit must be above 0.", fix="Pass your contract's credit price.")


def plan_finetune(session: Any, names: DeploymentNames, request: FinetuneRequest) -> FinetunePlan:
    """Check the settings, then the tables (columns and size) with read-only statements; nothing is created."""
    validate(request)
    training_table = qualified_table(request.training_table, names.database, names.schema, "Training table")
    validation_table = (qualified_table(request.validation_table, names.database, names.schema, "Validation table")
                        if request.validation_table else None)
    training = _measure(session, _shape(session, training_table, request))
    validation = _measure(session, _shape(session, validation_table, request)) if validation_table else None
    estimate = FinetuneEstimate(tokens_per_epoch=-(-training.characters // CHARS_PER_TOKEN),
                                epochs=request.max_epochs,
                                credits_per_million=request.training_credits_per_million,
                                dollars_per_credit=request.dollars_per_credit)
    # The model goes to the registry of the session's current schema (the CREATE page), which create_job sets
    # first with use_schema_sql(); model_fqn is where it will be.
    return FinetunePlan(model_fqn=f"{names.database}.{names.schema}.{request.name.upper()}",
                        base_model=request.base_model, training=training, validation=validation,
                        max_epochs=request.max_epochs, estimate=estimate)


def _shape(session: Any, table: str, request: FinetuneRequest) -> TableShape:
    try:
        rows = session.sql(f"SHOW COLUMNS IN TABLE {table}").collect()
    except Exception as exc:  # noqa: BLE001 - Snowpark raises its SQL error; its message is the server's
        raise DeploymentError(f"Table {table} cannot be read: {exc}",
                              fix=f"Check the name, and GRANT SELECT ON TABLE {table} to your role.") from None
    names = [str(row["column_name"]) for row in rows]

    def spelled(column: str, flag: str) -> str:
        match = next((name for name in names if name == column), None) or \
            next((name for name in names if name.upper() == column.upper()), None)
        if match is None:
            raise ConfigurationError(f"Table {table} has no column {column!r} (columns: {', '.join(names)}).",
                                     fix=f"Pass {flag} with one of those columns.")
        return match

    prompt_flag = "--prompt-column" if len(request.prompt_columns) == 1 else "--prompt-columns"
    return TableShape(table=table,
                      prompt_columns=tuple(spelled(column, prompt_flag) for column in request.prompt_columns),
                      completion_column=spelled(request.completion_column, "--completion-column"))


def _measure(session: Any, shape: TableShape) -> TableShape:
    """Rows, characters of prompt + completion, and rows missing either; an empty table is refused."""
    prompt, completion = prompt_expression(shape.prompt_columns), quoted(shape.completion_column)
    row = session.sql(
        f"SELECT COUNT(*) AS ROWS_TOTAL, COALESCE(SUM(LENGTH({prompt}) + LENGTH({completion})), 0) AS CHARACTERS, "
        f"COUNT_IF({prompt} IS NULL OR {completion} IS NULL) AS ROWS_INCOMPLETE FROM {shape.table}").collect()[0]
    measured = TableShape(shape.table, shape.prompt_columns, shape.completion_column, rows=int(row["ROWS_TOTAL"]),
                          characters=int(row["CHARACTERS"]), incomplete_rows=int(row["ROWS_INCOMPLETE"]))
    if measured.rows == measured.incomplete_rows:
        raise ConfigurationError(f"Table {shape.table} has no row with both a prompt and a completion.",
                                 fix="Fill the table, or pass the columns that hold the examples.")
    return measured
