"""The SQL of a bulk inference run, as text: built here once, printed for users who prefer SQL, run by ``batch.py``.

Every run numbers its input rows (``ROW_ID``) in a temporary table first, so each output row — answer or error —
can be matched to its input row, and rows without an answer can be found and reported instead of dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.names import is_identifier

ROW_ID = "ROW_ID"
RESPONSE = "RESPONSE"
ERROR = "ERROR"
RESULT_ROWS = "RESULT_ROWS"
ROWS_WITH_ROW_ID = "ROWS_WITH_ROW_ID"
ERROR_TEXT_LIMIT = 2000  # characters of an error kept in the output table


def literal(text: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quoted(column: str) -> str:
    """A case-exact (double-quoted) identifier, as SHOW COLUMNS spells the column."""
    return '"' + column.replace('"', '""') + '"'


def table_parts(name: str, what: str) -> list[str]:
    """``T`` / ``S.T`` / ``D.S.T`` split and upper-cased; anything else is refused before any SQL runs."""
    parts = name.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(is_identifier(part) for part in parts):
        raise ConfigurationError(
            f"{what} {name!r} is not a table name this command accepts.",
            fix="Pass TABLE, SCHEMA.TABLE or DATABASE.SCHEMA.TABLE with unquoted identifiers (letters, digits, _).",
        )
    return [part.upper() for part in parts]


def qualified_table(name: str, database: str, schema: str, what: str) -> str:
    """``T`` / ``S.T`` / ``D.S.T`` → ``D.S.T`` in upper case; anything else is refused before any SQL runs."""
    parts = table_parts(name, what)
    return ".".join([database, schema][: 3 - len(parts)] + parts)


@dataclass(frozen=True)
class ModelInput:
    """How a text column becomes the model function's one input column (from its signature in the registry).

    ``feature``: the signature's input name (``messages`` for OpenAI-chat, e.g. ``sentence`` for embeddings);
    ``chat``: build an OpenAI-chat message list; ``content_parts``: the signature types ``content`` as a list of
    ``{type, text}`` parts (``openai_signatures.py`` ``_OPENAI_CHAT_WITH_PARAMS_SPEC``) rather than a string.
    """

    feature: str
    chat: bool
    content_parts: bool = True
    system_prompt: str | None = None

    def _message(self, role: str, text_sql: str) -> str:
        content = f"ARRAY_CONSTRUCT(OBJECT_CONSTRUCT('type', 'text', 'text', {text_sql}))" if self.content_parts \
            else text_sql
        return f"OBJECT_CONSTRUCT('role', '{role}', 'content', {content})"

    def expression(self, text_column: str) -> str:
        """The SQL value passed to the model for one row."""
        if not self.chat:
            return quoted(text_column)
        messages = [self._message("user", quoted(text_column))]
        if self.system_prompt:
            messages.insert(0, self._message("system", literal(self.system_prompt)))
        return f"ARRAY_CONSTRUCT({', '.join(messages)})"


@dataclass(frozen=True)
class BatchTables:
    """The objects one run reads and writes."""

    input_table: str
    text_column: str
    numbered_table: str  # temporary: the input with ROW_ID
    output_table: str

    def number_input(self) -> str:
        # inferred: ROW_NUMBER over SEQ8() numbers rows 1..N in scan order; the numbers are fixed once stored.
        return (f"CREATE TEMPORARY TABLE {self.numbered_table} AS SELECT ROW_NUMBER() OVER (ORDER BY SEQ8()) AS "
                f"{ROW_ID}, {quoted(self.text_column)} FROM {self.input_table}")

    def create_output(self, overwrite: bool, *, temporary: bool = False) -> str:
        """The scored-rows table; ``temporary`` for a scratch table that ends with the session (the Flow recipe)."""
        create = f"CREATE {'OR REPLACE ' if overwrite else ''}{'TEMPORARY ' if temporary else ''}TABLE"
        return (f"{create} {self.output_table} ({ROW_ID} NUMBER, {quoted(self.text_column)} VARCHAR, "
                f"{RESPONSE} VARIANT, {ERROR} VARCHAR)")

    def _insert_columns(self) -> str:
        return f"INSERT INTO {self.output_table} ({ROW_ID}, {quoted(self.text_column)}, {RESPONSE}, {ERROR})"

    def service_insert(self, function_call: str, first_row: int | None = None, last_row: int | None = None) -> str:
        """Score rows through the service function; without bounds, the whole table (the printed version)."""
        where = "" if first_row is None else f" WHERE {ROW_ID} BETWEEN {first_row} AND {last_row}"
        return (f"{self._insert_columns()} SELECT {ROW_ID}, {quoted(self.text_column)}, {function_call}, NULL "
                f"FROM {self.numbered_table}{where}")

    def error_row(self, row_id: int, error: str) -> str:
        return (f"{self._insert_columns()} SELECT {ROW_ID}, {quoted(self.text_column)}, NULL, "
                f"{literal(error[:ERROR_TEXT_LIMIT])} FROM {self.numbered_table} WHERE {ROW_ID} = {row_id}")

    def rows_without_result(self, error: str) -> str:
        """Every input row the output lacks, with ``error``: no row is silently dropped."""
        return (f"{self._insert_columns()} SELECT i.{ROW_ID}, i.{quoted(self.text_column)}, NULL, "
                f"{literal(error[:ERROR_TEXT_LIMIT])} FROM {self.numbered_table} i WHERE NOT EXISTS "
                f"(SELECT 1 FROM {self.output_table} o WHERE o.{ROW_ID} = i.{ROW_ID})")

    def summary(self) -> str:
        return f"SELECT COUNT(*) AS ROWS_TOTAL, COUNT({ERROR}) AS ROWS_FAILED FROM {self.output_table}"


def service_function_call(service_fqn: str, method: str, argument: str, params_sql: list[str]) -> str:
    """``svc!METHOD(input, params...)``: the call snowml's ``invoke_function_method`` builds for ``mv.run(...,
    service_name=...)`` (``_client/sql/service.py``): input columns first, then every signature param in order."""
    name = method if is_identifier(method) else quoted(method)
    return f"{service_fqn}!{name}({', '.join([argument, *params_sql])})"


@dataclass(frozen=True)
class JobLocations:
    """Stage paths of one job run: the staged input must not sit inside the output location (snowml
    ``service_ops.validate_batch_inference_stage_locations``); results land in ``<output>/<job name>/``."""

    stage: str
    run_id: str
    job_name: str  # unqualified

    @property
    def input_location(self) -> str:
        return f"@{self.stage}/{self.run_id}/input/"

    @property
    def output_location(self) -> str:
        return f"@{self.stage}/{self.run_id}/output/"

    @property
    def results_location(self) -> str:
        return f"{self.output_location}{self.job_name}/"

    def create_stage(self) -> str:
        # An internal stage: run_batch writes only to Snowflake internal stages (batch_inference_job_specs.OutputSpec).
        return (f"CREATE STAGE IF NOT EXISTS {self.stage} ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE') "
                "COMMENT = 'spcs-llm bulk inference: job input and results'")

    def stage_input(self, tables: BatchTables, model_input: ModelInput) -> str:
        """Write ROW_ID, the text and the model input as Parquet: the shape run_batch reads (snowml writes an
        input DataFrame the same way, ``X.write.copy_into_location(..., file_format_type="parquet", header=True)``)."""
        text = quoted(tables.text_column)
        return (f"COPY INTO {self.input_location} FROM (SELECT {ROW_ID}, {text}, "
                f"{model_input.expression(tables.text_column)} AS {quoted(model_input.feature)} "
                f"FROM {tables.numbered_table}) FILE_FORMAT = (TYPE = PARQUET) HEADER = TRUE OVERWRITE = TRUE")

    def file_format(self) -> str:
        return f"CREATE TEMPORARY FILE FORMAT IF NOT EXISTS {self._file_format_name} TYPE = PARQUET"

    @property
    def _file_format_name(self) -> str:
        return f"{self.stage.rsplit('.', 1)[0]}.SPCS_LLM_BATCH_PARQUET"

    def _results(self) -> str:
        return f"{self.results_location} (FILE_FORMAT => {literal(self._file_format_name)}, PATTERN => '.*[.]parquet')"

    def check_results(self) -> str:
        """How many result rows the job wrote and how many carry the ROW_ID the staged input gave each row; the run
        reads the results only when every row carries it (``load_results`` matches rows by it)."""
        return (f"SELECT COUNT(*) AS {RESULT_ROWS}, COUNT($1:{ROW_ID}) AS {ROWS_WITH_ROW_ID} "
                f"FROM {self._results()}")

    def load_results(self, tables: BatchTables, model_input: ModelInput) -> str:
        """Copy the job's Parquet results into the output table: ROW_ID and the text as passed through, the model's
        output columns as one RESPONSE object. The job's output rows carry every input column, including ones the
        signature does not name, followed by the model's output columns: Snowflake's batch inference integration
        tests expect exactly input (with an added index column) + model output
        (``tests/integ/snowflake/ml/registry/jobs/registry_batch_inference_test_base.py``,
        ``_prepare_batch_inference_data``; not yet seen on a live account). ``check_results`` runs first."""
        inputs = ", ".join(literal(name) for name in (ROW_ID, tables.text_column, model_input.feature))
        return (f"INSERT INTO {tables.output_table} ({ROW_ID}, {quoted(tables.text_column)}, {RESPONSE}, {ERROR}) "
                f"SELECT $1:{ROW_ID}::NUMBER, $1:{quoted(tables.text_column)}::VARCHAR, OBJECT_DELETE($1, {inputs}), "
                f"NULL FROM {self._results()}")
