"""Cortex fine-tuning on the fake account: ``SNOWFLAKE.CORTEX.FINETUNE('CREATE' | 'DESCRIBE' | 'CANCEL', ...)`` and
the training-table checks, answered from the account's tables (``fake_tables.py``) and scripted job progressions.

The statement shapes are the ones snowflake-ml 2.6 sends (snowflake/cortex/_finetune.py through
_util.call_sql_function_literals: ``SELECT SNOWFLAKE.CORTEX.FINETUNE(<literals>)``, one cell back). Rules enforced,
each from the FINETUNE ('CREATE') reference page (https://docs.snowflake.com/en/sql-reference/functions/finetune-create):
the base model must be one of the listed ones; the training query's result must have prompt and completion columns;
the name is an identifier (letters, digits, _; a dotted path is refused) and the model goes to the registry of the
session's current schema (the last ``USE SCHEMA``); the options are a string holding a JSON object
('{"max_epochs": 3}', max_epochs 1 to 10). DESCRIBE names a finished model DB.SCHEMA.NAME, as the answer recorded in
snowflake-ml's snowflake/cortex/finetune_test.py does (``FinetuneState.plain_model_names``: as the DESCRIBE page's
example does, the bare name).
Stricter where the real behaviour is unknown: a DESCRIBE or CANCEL of an unknown job id is an error, and the
training query must read an existing table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import fake_snowflake
from fake_snowflake import FakeAccount, RecordingSession
from fake_tables import find_table
from snowflake.snowpark import Row
from snowflake.snowpark.exceptions import SnowparkSQLException

ALLOWED_BASE_MODELS = ("llama3-8b", "llama3-70b", "llama3.1-8b", "llama3.1-70b", "mistral-7b", "mixtral-8x7b")
_LITERAL = r"'((?:[^'\\]|\\.)*)'"


@dataclass
class FakeFinetuneJob:
    """A job whose DESCRIBE answers walk through ``script`` (one step per DESCRIBE), then stay on the last."""

    job_id: str
    name: str
    base_model: str
    training_query: str
    validation_query: str | None
    options: dict[str, Any]
    script: list[dict[str, Any]]
    step: int = 0
    cancelled: bool = False

    def describe(self) -> dict[str, Any]:
        state = {"status": "CANCELLED"} if self.cancelled else self.script[min(self.step, len(self.script) - 1)]
        self.step += 1
        answer = {"id": self.job_id, "base_model": self.base_model, "created_on": 1733300000000,
                  "training_data": self.training_query, "validation_data": self.validation_query or "", **state}
        if answer["status"] == "SUCCESS":
            answer.setdefault("model", self.name)
            answer.setdefault("progress", 1.0)
        return answer


@dataclass
class FinetuneState:
    """What a test scripts (the next job's DESCRIBE steps, a refusal) and what the fake saw (the jobs)."""

    jobs: dict[str, FakeFinetuneJob] = field(default_factory=dict)
    next_script: list[dict[str, Any]] = field(default_factory=lambda: [
        {"status": "PENDING"}, {"status": "IN_PROGRESS", "progress": 0.5, "trained_tokens": 1200},
        {"status": "SUCCESS", "progress": 1.0, "trained_tokens": 2400}])
    create_error: str | None = None
    plain_model_names: bool = False  # DESCRIBE answers "model": "NAME" instead of "DB.SCHEMA.NAME"


def finetune_state(account: FakeAccount) -> FinetuneState:
    state = getattr(account, "cortex_finetune", None)
    if state is None:
        state = FinetuneState()
        account.cortex_finetune = state  # type: ignore[attr-defined]
    return state


def error_step(message: str) -> list[dict[str, Any]]:
    """A script that fails after starting, the way DESCRIBE reports it (an ``error`` object)."""
    return [{"status": "PENDING"}, {"status": "IN_PROGRESS", "progress": 0.1},
            {"status": "ERROR", "progress": 0.1, "error": {"code": "FINETUNE_FAILED", "message": message}}]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _columns_of(expression: str) -> list[str]:
    return re.findall(r'"((?:[^"]|"")+)"', expression)


def _prompt_value(row: dict[str, Any], expression: str) -> str | None:
    """The fake's reading of our prompt expression: one column, or several joined by a blank line, empty left out."""
    values = [row.get(column) for column in _columns_of(expression)]
    if not expression.startswith("ARRAY_TO_STRING"):
        return values[0]
    kept = [str(value).strip() for value in values if value is not None and str(value).strip()]
    return "\n\n".join(kept) if kept else None


class _FinetuneAnswers:
    def __init__(self, session: RecordingSession) -> None:
        self.session = session
        self.state = finetune_state(session.account)

    def _table(self, name: str) -> Any:
        table = find_table(self.session.account, name)
        if table is None:
            raise SnowparkSQLException(f"002003 (42S02): SQL compilation error: Object '{name}' does not exist or "
                                       "not authorized.")
        return table

    def show_columns(self, m: re.Match) -> list[Row]:
        return [Row(table_name=m[1].split(".")[-1], column_name=name, data_type=kind, kind="COLUMN")
                for name, kind in self._table(m[1]).columns.items()]

    def measure(self, m: re.Match) -> list[Row]:
        prompt_sql, completion_sql, table = m[1], m[2], self._table(m[3])
        completion = _columns_of(completion_sql)[0]
        pairs = [(_prompt_value(row, prompt_sql), row.get(completion)) for row in table.rows]
        characters = sum(len(p) + len(str(c)) for p, c in pairs if p is not None and c is not None)
        incomplete = sum(1 for p, c in pairs if p is None or c is None)
        return [Row(ROWS_TOTAL=len(pairs), CHARACTERS=characters, ROWS_INCOMPLETE=incomplete)]

    def _check_query(self, query: str, what: str) -> None:
        found = re.match(r"^SELECT (.+) AS prompt, (.+) AS completion FROM ([\w.]+)", query)
        if not found:
            raise SnowparkSQLException(f"FINETUNE: the {what} query result must include prompt and completion "
                                       "columns.")
        self._table(found[3])

    def _current_schema(self) -> str:
        used = [s for s in self.session.statements if s.upper().startswith("USE SCHEMA ")]
        account = self.session.account
        return used[-1].split()[-1].upper() if used else f"{account.database}.{account.schema}"

    @staticmethod
    def _options(text: str | None) -> dict[str, Any]:
        if text is None:
            return {}
        try:
            options = json.loads(_unescape(text))
        except json.JSONDecodeError:
            raise SnowparkSQLException(f"FINETUNE: options must be a JSON object string, not {text!r}.") from None
        epochs = options.get("max_epochs") if isinstance(options, dict) else None
        if not isinstance(options, dict) or set(options) - {"max_epochs"} or (
                epochs is not None and not (isinstance(epochs, int) and 1 <= epochs <= 10)):
            raise SnowparkSQLException(f"FINETUNE: invalid options {text!r}.")
        return options

    def create(self, m: re.Match) -> list[Row]:
        name, base_model, training = _unescape(m[1]), _unescape(m[2]), _unescape(m[3])
        validation = None if m[4] is None else _unescape(m[4])
        if self.state.create_error:
            raise SnowparkSQLException(self.state.create_error)
        if not re.match(r'^([A-Za-z_][A-Za-z0-9_$]*|"[^"]+")$', name):
            raise SnowparkSQLException(f"FINETUNE: invalid identifier '{name}' for the model name.")
        if base_model not in ALLOWED_BASE_MODELS:
            raise SnowparkSQLException(f"FINETUNE: unsupported base model '{base_model}'.")
        self._check_query(training, "training")
        if validation is not None:
            self._check_query(validation, "validation")
        job_id = f"CortexFineTuningWorkflow_{len(self.state.jobs) + 1:04d}"
        options = self._options(m[5])
        model = name if self.state.plain_model_names else f"{self._current_schema()}.{name.upper()}"
        self.state.jobs[job_id] = FakeFinetuneJob(job_id, model, base_model, training, validation, options,
                                                  list(self.state.next_script))
        return [Row(job_id)]

    def _job(self, job_id: str) -> FakeFinetuneJob:
        job = self.state.jobs.get(_unescape(job_id))
        if job is None:
            raise SnowparkSQLException(f"FINETUNE: job '{job_id}' not found.")
        return job

    def describe(self, m: re.Match) -> list[Row]:
        return [Row(json.dumps(self._job(m[1]).describe()))]

    def cancel(self, m: re.Match) -> list[Row]:
        job = self._job(m[1])
        job.cancelled = True
        return [Row(f"Canceled Cortex Fine-tuning job: {job.job_id}")]


def _handlers(session: RecordingSession) -> fake_snowflake.Handlers:
    answers = _FinetuneAnswers(session)
    call = r"^SELECT SNOWFLAKE\.CORTEX\.FINETUNE\("
    return [
        (r"^SHOW COLUMNS IN TABLE ([\w.]+)$", answers.show_columns),
        (r"^SELECT COUNT\(\*\) AS ROWS_TOTAL, COALESCE\(SUM\(LENGTH\((.+)\) \+ LENGTH\(((?:\"[^\"]+\")+)\)\), 0\) "
         r"AS CHARACTERS, COUNT_IF\(.+\) AS ROWS_INCOMPLETE FROM ([\w.]+)$", answers.measure),
        (call + rf"'CREATE', {_LITERAL}, {_LITERAL}, {_LITERAL}(?:, (?:NULL|{_LITERAL})(?:, {_LITERAL})?)?\)$",
         answers.create),
        (call + rf"'DESCRIBE', ?{_LITERAL}\)$", answers.describe),  # ', ' ours, ',' snowflake-ml's
        (call + rf"'CANCEL', ?{_LITERAL}\)$", answers.cancel),
    ]


if _handlers not in fake_snowflake.HANDLER_EXTENSIONS:
    fake_snowflake.HANDLER_EXTENSIONS.append(_handlers)
