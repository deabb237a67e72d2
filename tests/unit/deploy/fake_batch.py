"""The fake account's answers for bulk inference: tables, a stage, service functions and batch inference jobs.

Extends ``fake_snowflake.RecordingSession`` through ``HANDLER_EXTENSIONS`` (importing this module registers it).
It answers the SQL ``spcs_llm.deploy.batch.plan`` sends and the SQL snowml's ``ModelVersion.run_batch`` and ``MLJob``
send; anything else still raises. Its rules, each the stricter reading where Snowflake's is unknown:

* a service function that fails on one row fails the whole statement, and nothing of it is inserted;
* a batch job writes no output row for an input row its model fails on, and nothing at all when it FAILED;
* ``EXECUTE INFERENCE JOB SERVICE`` refuses an unknown pool, model, version or function, and (save mode
  ``error``, ``batch_inference_job_specs.SaveMode``) an output location that already holds files.

``MLJob`` reads job state through ``session._conn.run_query`` (``snowflake/ml/jobs/_utils/query_helper.py``), not
``session.sql``; ``JobConnection`` answers a batch job's ``DESCRIBE SERVICE IDENTIFIER(...)`` (job names carry
``SPCS_LLM_BATCH_``) and hands every other statement to the connection it wraps. Another fake that sets
``session._conn`` after this one replaces it: tests call ``attach_job_connection(session)`` to put it back in front.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass, field
from typing import Any

import fake_snowflake
import yaml
from fake_snowflake import FakeAccount, RecordingSession, _last, _not_found
from fake_tables import FakeTable, find_table, table_key, tables
from snowflake.connector.cursor import ResultMetadata
from snowflake.snowpark import Row
from snowflake.snowpark.exceptions import SnowparkSQLException

_TEXT_TYPE_CODE = 2  # snowflake.connector constants: TEXT
JOB_STATUS = r"^DESCRIBE SERVICE IDENTIFIER\('([^']*SPCS_LLM_BATCH_[^']*)'\)$"
_INSERT = r"^INSERT INTO ([\w.]+) \(ROW_ID, \"([^\"]+)\", RESPONSE, ERROR\) SELECT "


@dataclass
class FakeBatchJob:
    fqn: str
    model: str
    version: str
    function: str
    pool: str
    replicas: int | None
    spec: dict[str, Any]
    input_location: str
    statuses: list[str]
    polls: int = 0

    @property
    def output_location(self) -> str:
        return f"{self.spec['output']['stage_location']}{_last(self.fqn)}/"


@dataclass
class FakeBatchState:
    tables: dict[str, FakeTable]  # the account's table registry, shared with the other fakes (fake_tables.py)
    stages: set[str] = field(default_factory=set)
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # stage location → Parquet rows
    file_formats: set[str] = field(default_factory=set)
    jobs: dict[str, FakeBatchJob] = field(default_factory=dict)
    next_job_statuses: list[str] = field(default_factory=lambda: ["PENDING", "RUNNING", "DONE"])
    failing_texts: set[str] = field(default_factory=set)  # the model fails on these inputs
    drops_input_columns: bool = False  # the job writes the model's output columns only (no ROW_ID passed through)
    raw_statements: list[str] = field(default_factory=list)


def batch_state(account: FakeAccount) -> FakeBatchState:
    state = getattr(account, "batch", None)
    if state is None:
        state = FakeBatchState(tables(account))
        account.batch = state  # type: ignore[attr-defined]
    return state


def model_output(kind: str, text: str, model: str | None = None) -> dict[str, Any]:
    """What the fake model answers: an OpenAI chat completion, or an ``encode`` output."""
    if kind == "embedding":
        return {"output": [float(len(text)), 0.5, -0.5]}
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0.0, "model": model or "base",
            "choices": [{"index": 0, "message": {"content": f"answer to: {text}", "role": "assistant"},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"completion_tokens": 3, "prompt_tokens": len(text.split()), "total_tokens": 3}}


class JobConnection:
    """The ``session._conn`` surface MLJob uses: ``run_query`` (qmark params) and ``_cursor.description``.

    Statements about batch jobs are answered here first; anything else goes to the connection this one wraps
    (another fake's, e.g. fake_jobs.py) or, without one, to ``session.execute``."""

    def __init__(self, session: RecordingSession, answers: _BatchAnswers, inner: Any = None) -> None:
        self._session = session
        self._answers = answers
        self._inner = inner
        self._cursor = inner._cursor if inner is not None else types.SimpleNamespace(description=[])

    def __getattr__(self, name: str) -> Any:
        if self._inner is None:
            raise AttributeError(name)
        return getattr(self._inner, name)

    def run_query(self, query: str, params: Any = None, **options: Any) -> dict[str, Any]:
        values = iter(params or ())
        text = re.sub(r"\?", lambda _m: _sql_value(next(values)), query)
        match = re.search(JOB_STATUS, text)
        if match is None and self._inner is not None:
            return self._inner.run_query(query, params, **options)
        if match is None:
            rows = self._session.execute(text, None)
        else:
            self._session.statements.append(text)
            rows = self._answers.describe_job(match)
        names = list(rows[0].as_dict()) if rows else []
        self._cursor.description = [ResultMetadata(n, _TEXT_TYPE_CODE, None, None, None, None, True) for n in names]
        return {"data": [tuple(row) for row in rows]}


def attach_job_connection(session: RecordingSession) -> None:
    """Put the batch job answers in front of whatever ``session._conn`` is there now (idempotent)."""
    current = getattr(session, "_conn", None)
    if not isinstance(current, JobConnection):
        session._conn = JobConnection(session, _BatchAnswers(session), current)  # type: ignore[attr-defined]


def _sql_value(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _unquote_literal(text: str) -> str:
    return text.replace("\\'", "'").replace("\\\\", "\\")


def _kind_of(account: FakeAccount, model: str, version: str) -> str:
    signatures = yaml.safe_load(account.model_specs[(model, version)])["signatures"]
    return "chat" if "__call__" in signatures else "embedding"


class _BatchAnswers:
    def __init__(self, session: RecordingSession) -> None:
        self.session = session
        self.account = session.account
        self.state = batch_state(session.account)

    def table(self, fqn: str) -> FakeTable:
        table = find_table(self.account, fqn)
        if table is None:
            raise _not_found(f"Table '{fqn}'")
        return table

    def show_columns(self, m: re.Match) -> list[Row]:
        return [Row(table_name=_last(m[1]), column_name=name, data_type=kind, kind="COLUMN")
                for name, kind in self.table(m[1]).columns.items()]

    def show_tables(self, m: re.Match) -> list[Row]:
        table = find_table(self.account, f"{m[2]}.{m[1]}")
        return [Row(name=m[1].upper(), rows=len(table.rows))] if table is not None else []

    def count(self, m: re.Match) -> list[Row]:
        return [Row(ROW_COUNT=len(self.table(m[1]).rows))]

    def number_input(self, m: re.Match) -> list[Row]:
        source, column = self.table(m[3]), m[2]
        if column not in source.columns:
            raise SnowparkSQLException(f"000904 (42000): SQL compilation error: invalid identifier '\"{column}\"'")
        rows = [{"ROW_ID": i, column: row[column]} for i, row in enumerate(source.rows, start=1)]
        self.state.tables[table_key(self.account, m[1])] = FakeTable({"ROW_ID": "NUMBER", column: "VARCHAR"}, rows)
        return [Row(status=f"Table {_last(m[1])} successfully created.")]

    def create_output(self, m: re.Match) -> list[Row]:
        if find_table(self.account, m[2]) is not None and not m[1]:
            raise SnowparkSQLException(f"002002 (42710): SQL compilation error: Object '{m[2]}' already exists.")
        columns = {"ROW_ID": "NUMBER", m[3]: "VARCHAR", "RESPONSE": "VARIANT", "ERROR": "VARCHAR"}
        self.state.tables[table_key(self.account, m[2])] = FakeTable(columns)
        return [Row(status=f"Table {_last(m[2])} successfully created.")]

    def _insert(self, output: str, rows: list[dict[str, Any]]) -> list[Row]:
        self.table(output).rows.extend(rows)
        return [Row(**{"number of rows inserted": len(rows)})]

    def service_insert(self, m: re.Match) -> list[Row]:
        """One service-function statement: all rows answered, or (one failing row) an error and nothing inserted."""
        output, column, service_fqn, method, arguments, source = m[1], m[2], m[3], m[4], m[5], m[6]
        service = self.account.services.get(_last(service_fqn))
        if service is None:
            raise _not_found(f"Service '{_last(service_fqn)}'")
        signatures = yaml.safe_load(self.account.model_specs[(service.model, service.version)])["signatures"]
        if method.upper() not in {name.upper() for name in signatures}:
            raise SnowparkSQLException(
                f"002140 (42601): SQL compilation error: Unknown function {service_fqn}!{method}")
        kind = _kind_of(self.account, service.model, service.version)
        rows = [row for row in self.table(source).rows
                if m[7] is None or int(m[7]) <= row["ROW_ID"] <= int(m[8])]
        for row in rows:
            if row[column] in self.state.failing_texts:
                raise SnowparkSQLException(
                    f"100357 (P0000): Request failed for external function {method}. Error: model failed on input "
                    f"of length {len(row[column])}")
        last_argument = arguments.rsplit(", ", 1)[-1]  # the signature's last param: ``model`` for OpenAI-chat
        model = last_argument.strip("'") if kind == "chat" and last_argument.startswith("'") else None
        return self._insert(output, [{"ROW_ID": r["ROW_ID"], column: r[column], "ERROR": None,
                                      "RESPONSE": model_output(kind, r[column], model)} for r in rows])

    def error_row(self, m: re.Match) -> list[Row]:
        column, message, source, row_id = m[2], _unquote_literal(m[3]), m[4], int(m[5])
        rows = [row for row in self.table(source).rows if row["ROW_ID"] == row_id]
        return self._insert(m[1], [{"ROW_ID": r["ROW_ID"], column: r[column], "RESPONSE": None, "ERROR": message}
                                   for r in rows])

    def rows_without_result(self, m: re.Match) -> list[Row]:
        column, message, source = m[2], _unquote_literal(m[3]), m[4]
        present = {row["ROW_ID"] for row in self.table(m[1]).rows}
        missing = [row for row in self.table(source).rows if row["ROW_ID"] not in present]
        return self._insert(m[1], [{"ROW_ID": r["ROW_ID"], column: r[column], "RESPONSE": None, "ERROR": message}
                                   for r in missing])

    def summary(self, m: re.Match) -> list[Row]:
        rows = self.table(m[1]).rows
        return [Row(ROWS_TOTAL=len(rows), ROWS_FAILED=sum(1 for row in rows if row["ERROR"] is not None))]

    def create_stage(self, m: re.Match) -> list[Row]:
        self.state.stages.add(m[1].upper())
        return [Row(status="Stage area successfully created.")]

    def _stage_of(self, location: str) -> str:
        stage = location.lstrip("@").split("/", 1)[0].upper()
        if stage not in self.state.stages:
            raise _not_found(f"Stage '{stage}'")
        return stage

    def stage_input(self, m: re.Match) -> list[Row]:
        location = m[1]
        self._stage_of(location)
        column, feature, source = m[2], m[4], self.table(m[5])
        self.state.files[location] = [{"ROW_ID": r["ROW_ID"], column: r[column], feature: m[3].replace(
            f'"{column}"', repr(r[column]))} for r in source.rows]
        return [Row(rows_unloaded=len(source.rows))]

    def execute_job(self, m: re.Match) -> list[Row]:
        """EXECUTE INFERENCE JOB SERVICE, as ``_client/sql/service.py`` builds it."""
        raw = self.state.raw_statements[-1]
        body = raw.split("WITH SPECIFICATION '", 1)[1].rsplit("'\nFROM ", 1)[0].replace("\\'", "'")
        spec = yaml.safe_load(body)
        pool, source, model_fqn, version, function, job_fqn = m[1], m[2], m[3], m[4], m[5], m[6]
        if pool.upper() not in self.account.compute_pools:
            raise _not_found(f"Compute pool '{pool}'")
        model = _last(model_fqn)
        if version.upper() not in self.account.models.get(model, {}):
            raise _not_found(f"Model '{model}' version '{version}'")
        signatures = yaml.safe_load(self.account.model_specs[(model, version.upper())])["signatures"]
        if function not in signatures:
            raise SnowparkSQLException(f"Function '{function}' not found in model {model} version {version}.")
        if source not in self.state.files:
            raise SnowparkSQLException(f"No input files found at {source}.")
        for adapter in (spec.get("inference") or {}).get("adapters") or []:
            if _last(adapter["name"]) not in self.account.models:
                raise _not_found(f"Model '{adapter['name']}'")
        job = FakeBatchJob(job_fqn.upper(), model, version.upper(), function, pool.upper(),
                           int(m[7]) if m[7] else None, spec, source, list(self.state.next_job_statuses))
        if spec["output"]["mode"] == "error" and any(k.startswith(job.output_location) for k in self.state.files):
            raise SnowparkSQLException(f"Output location {job.output_location} is not empty (mode: error).")
        self.state.jobs[job.fqn] = job
        return [Row(status=f"Batch inference job {job.fqn} started.")]

    def describe_job(self, m: re.Match) -> list[Row]:
        job = self.state.jobs.get(m[1].upper())
        if job is None:
            raise _not_found(f"Service '{m[1]}'")
        job.polls += 1
        status = job.statuses[min(job.polls - 1, len(job.statuses) - 1)]
        if status == "DONE" and job.output_location not in self.state.files:
            self._write_results(job)
        return [Row(name=_last(job.fqn), status=status, compute_pool=job.pool, spec=yaml.safe_dump({"spec": {}}))]

    def _write_results(self, job: FakeBatchJob) -> None:
        """Every staged input row with the model's output columns, except rows the model fails on."""
        kind = _kind_of(self.account, job.model, job.version)
        model = ((job.spec.get("input") or {}).get("params") or {}).get("model")
        results = []
        for row in self.state.files[job.input_location]:
            text = next(value for key, value in row.items() if key != "ROW_ID")
            if text not in self.state.failing_texts:
                results.append({**({} if self.state.drops_input_columns else row), **model_output(kind, text, model)})
        self.state.files[job.output_location] = results

    def file_format(self, m: re.Match) -> list[Row]:
        self.state.file_formats.add(m[1].upper())
        return [Row(status=f"File format {_last(m[1])} successfully created.")]

    def _result_rows(self, location: str, file_format: str) -> list[dict[str, Any]]:
        if file_format.upper() not in self.state.file_formats:
            raise _not_found(f"File format '{file_format}'")
        self._stage_of(location)
        return self.state.files.get(location, [])

    def check_results(self, m: re.Match) -> list[Row]:
        rows = self._result_rows(m[1], m[2])
        return [Row(RESULT_ROWS=len(rows), ROWS_WITH_ROW_ID=sum(row.get("ROW_ID") is not None for row in rows))]

    def load_results(self, m: re.Match) -> list[Row]:
        output, column, deleted, location, file_format = m[1], m[2], m[4], m[5], m[6]
        if file_format.upper() not in self.state.file_formats:
            raise _not_found(f"File format '{file_format}'")
        self._stage_of(location)
        dropped = set(re.findall(r"'([^']*)'", deleted))
        return self._insert(output, [{"ROW_ID": r["ROW_ID"], column: r[column], "ERROR": None,
                                      "RESPONSE": {k: v for k, v in r.items() if k not in dropped}}
                                     for r in self.state.files.get(location, [])])


def _handlers(session: RecordingSession) -> fake_snowflake.Handlers:
    answers = _BatchAnswers(session)
    state = answers.state
    execute = session.execute

    def recording_execute(query: str, params: Any) -> list[Row]:
        state.raw_statements.append(query)
        return execute(query, params)

    session.execute = recording_execute  # type: ignore[method-assign]  # the job spec YAML needs its line breaks
    if getattr(session, "_conn", None) is None:  # another fake's connection is left alone for its own tests
        attach_job_connection(session)
    return [
        (r"^SHOW COLUMNS IN TABLE ([\w.]+)$", answers.show_columns),
        (r"^SHOW TABLES LIKE '(\w+)' IN SCHEMA ([\w.]+)$", answers.show_tables),
        (r"^SELECT COUNT\(\*\) AS ROW_COUNT FROM ([\w.]+)$", answers.count),
        (r"^CREATE TEMPORARY TABLE ([\w.]+) AS SELECT ROW_NUMBER\(\) OVER \(ORDER BY SEQ8\(\)\) AS ROW_ID, "
         r"\"([^\"]+)\" FROM ([\w.]+)$", answers.number_input),
        (r"^CREATE (OR REPLACE )?(?:TEMPORARY )?TABLE ([\w.]+) \(ROW_ID NUMBER, \"([^\"]+)\" VARCHAR, "
         r"RESPONSE VARIANT, ERROR VARCHAR\)$", answers.create_output),
        (_INSERT + r"ROW_ID, \"[^\"]+\", ([\w.]+)!(\w+)\((.*)\), NULL FROM ([\w.]+)"
                   r"(?: WHERE ROW_ID BETWEEN (\d+) AND (\d+))?$", answers.service_insert),
        (_INSERT + r"ROW_ID, \"[^\"]+\", NULL, '(.*)' FROM ([\w.]+) WHERE ROW_ID = (\d+)$", answers.error_row),
        (_INSERT + r"i\.ROW_ID, i\.\"[^\"]+\", NULL, '(.*)' FROM ([\w.]+) i WHERE NOT EXISTS \(SELECT 1 FROM "
                   r"[\w.]+ o WHERE o\.ROW_ID = i\.ROW_ID\)$", answers.rows_without_result),
        (r"^SELECT COUNT\(\*\) AS ROWS_TOTAL, COUNT\(ERROR\) AS ROWS_FAILED FROM ([\w.]+)$", answers.summary),
        (r"^CREATE STAGE IF NOT EXISTS ([\w.]+) ENCRYPTION = \(TYPE = 'SNOWFLAKE_SSE'\) COMMENT = '[^']*'$",
         answers.create_stage),
        (r"^COPY INTO (@\S+) FROM \(SELECT ROW_ID, \"([^\"]+)\", (.*) AS \"([^\"]+)\" FROM ([\w.]+)\) "
         r"FILE_FORMAT = \(TYPE = PARQUET\) HEADER = TRUE OVERWRITE = TRUE$", answers.stage_input),
        (r"^EXECUTE INFERENCE JOB SERVICE IN COMPUTE POOL (\w+) WITH SPECIFICATION '.*' FROM (@\S+) "
         r"MODEL = ([\w.]+) VERSION = (\w+) FUNCTION = '(\w+)' NAME = ([\w.]+) ASYNC = TRUE(?: REPLICAS = (\d+))?$",
         answers.execute_job),
        (r"^CREATE TEMPORARY FILE FORMAT IF NOT EXISTS ([\w.]+) TYPE = PARQUET$", answers.file_format),
        (r"^SELECT COUNT\(\*\) AS RESULT_ROWS, COUNT\(\$1:ROW_ID\) AS ROWS_WITH_ROW_ID FROM (@\S+) "
         r"\(FILE_FORMAT => '([\w.]+)', PATTERN => '\.\*\[\.\]parquet'\)$", answers.check_results),
        (_INSERT + r"\$1:ROW_ID::NUMBER, \$1:\"([^\"]+)\"::VARCHAR, OBJECT_DELETE\(\$1, (.*)\), NULL FROM (@\S+) "
                   r"\(FILE_FORMAT => '([\w.]+)', PATTERN => '\.\*\[\.\]parquet'\)$", answers.load_results),
    ]


if _handlers not in fake_snowflake.HANDLER_EXTENSIONS:
    fake_snowflake.HANDLER_EXTENSIONS.append(_handlers)
