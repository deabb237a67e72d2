"""The fake account's side of ``snowflake.ml.jobs`` (snowflake-ml 2.6): payload stage, file transfers, job services.

Importing this module appends ``jobs_handlers`` to ``fake_snowflake.HANDLER_EXTENSIONS``; every new
``RecordingSession`` then also gets the Session surface the jobs code uses beyond ``session.sql``:

* ``session._conn.run_query`` — snowflake-ml ``jobs/_utils/query_helper.py`` sends its qmark-bound statements there
  (``describe stage``, ``SYSTEM$GET_ML_JOB_RUNTIME``, ``SYSTEM$EXECUTE_ML_JOB``, ``DESCRIBE SERVICE``,
  ``spcs_wait_for``, ``SYSTEM$GET_SERVICE_LOGS``), answered here and recorded in ``session.statements`` with the
  parameters bound as the connector's own converter quotes them;
* ``session._conn._cursor._preprocess_pyformat_query`` — ``job_definition.py`` ``to_sql`` binds the EXECUTE call
  client-side with it; the fake uses the connector's ``SnowflakeConverter`` quoting, as the real cursor does;
* ``session.file`` — the shared ``FakeFileOperation`` plus what the payload upload (``payload_utils.py``) and the
  result download (``_interop/data_utils.py``) need: wildcard PUT, ``put_stream``, GET of one file; a stage is a
  dict of paths in ``account.uploaded``. As Snowflake's PUT, an existing file is skipped unless ``overwrite=True``.
* ``session.get_current_warehouse``.

A submitted job does not run: it ends as ``FakeJobs.next_outcome`` scripts it, and its result file is written with
snowflake-ml's own ``_interop.utils.save`` (what ``mljob_launcher.py`` does in the container), so ``MLJob.result()``
reads it through the real loader. Unknown statements raise, as in ``fake_snowflake``.
"""

from __future__ import annotations

import glob
import io
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import fake_snowflake
import fake_tables
import yaml
from fake_snowflake import FakeFileOperation, RecordingSession, _last, _not_found, _unquote
from snowflake.connector.converter import SnowflakeConverter
from snowflake.connector.cursor import ResultMetadata
from snowflake.snowpark import Row
from snowflake.snowpark.exceptions import SnowparkSQLException

TERMINAL = {"DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR", "DELETED"}  # snowflake-ml jobs/job.py
RUNTIME_IMAGES = {  # snowflake-ml jobs/_utils/constants.py DEFAULT_IMAGE_* (what GET_ML_JOB_RUNTIME picks per pool)
    True: "/snowflake/images/snowflake_images/st_plat/runtime/x86/generic_gpu/runtime_image/snowbooks:1.8.0",
    False: "/snowflake/images/snowflake_images/st_plat/runtime/x86/runtime_image/snowbooks:1.8.0",
}
STAGE_MOUNT = "/mnt/job_stage"  # constants.STAGE_VOLUME_MOUNT_PATH
RESULT_PATH = "output/mljob_result"  # constants.RESULT_PATH_DEFAULT_VALUE


DERIVED = "derived from the job's arguments"  # JobOutcome.value: what spcs_llm's entry script would return


@dataclass
class JobOutcome:
    """How the next submitted job ends: its final status, its return value or raised error, and its log.

    With ``value=DERIVED`` a finished job leaves what ``spcs_llm``'s fine-tuning entry script would: the adapter
    files and training report in the ``--output`` stage folder, and the report as its result (so a notebook run
    against the fake can go on to serve the adapter)."""

    status: str = "DONE"
    value: Any = DERIVED
    error: BaseException | None = None
    logs: str | None = "ML job started\nML job finished"  # None: the job kept no log


@dataclass
class FakeJob:
    id: str
    compute_pool: str
    spec_options: dict[str, Any]
    job_options: dict[str, Any]
    outcome: JobOutcome
    status: str = "PENDING"

    @property
    def stage_path(self) -> str:
        return str(self.spec_options["STAGE_PATH"])

    @property
    def args(self) -> list[str]:
        return [str(arg) for arg in self.spec_options["ARGS"]]

    def spec(self) -> str:
        """The service spec ``DESCRIBE SERVICE`` shows. inferred: the server's spec for an ML job has one ``main``
        container with the submitted env plus MLRS_RESULT_PATH, and the payload stage mounted at /mnt/job_stage
        (the fields snowflake-ml jobs/job.py reads: containers[].env / volumeMounts, volumes[].source)."""
        env = {**self.spec_options["ENV_VARS"], "MLRS_RESULT_PATH": RESULT_PATH}
        return yaml.safe_dump({"spec": {
            "containers": [{"name": "main", "image": self.spec_options["RUNTIME"], "command": self.args, "env": env,
                            "volumeMounts": [{"name": "stage-volume", "mountPath": STAGE_MOUNT}]}],
            "volumes": [{"name": "stage-volume", "source": self.stage_path}],
        }})


class FakeJobs:
    """Jobs and stages of the fake account, scripted by tests; tables are the account's (fake_tables.py)."""

    def __init__(self, session: RecordingSession) -> None:
        self.session = session
        self.stages: set[str] = set()
        self.jobs: dict[str, FakeJob] = {}
        self.next_outcome = JobOutcome()

    @property
    def uploaded(self) -> dict[str, bytes]:
        return self.session.account.uploaded

    @property
    def tables(self) -> dict[str, fake_tables.FakeTable]:
        return fake_tables.tables(self.session.account)

    def files_under(self, prefix: str) -> dict[str, bytes]:
        return {path: data for path, data in self.uploaded.items() if path.startswith(prefix.rstrip("/") + "/")}


def _bind_qmark(query: str, params: Any) -> str:
    """The statement as the server sees it once the ``?`` parameters are bound, quoted like the connector does."""
    values = iter(params or ())
    converter = SnowflakeConverter()
    return re.sub(r"\?", lambda _m: converter.quote(converter.escape(converter.to_snowflake(next(values)))), query)


def _literals(text: str) -> list[str]:
    """The SQL string literals of a statement, unescaped (the inverse of ``SnowflakeConverter.escape``)."""
    unescape = {"n": "\n", "r": "\r"}
    raw_literals = re.findall(r"'((?:[^'\\]|\\.)*)'", text)
    return [re.sub(r"\\(.)", lambda m: unescape.get(m[1], m[1]), raw) for raw in raw_literals]


class FakeCursor:
    def __init__(self) -> None:
        self.description: list[ResultMetadata] = []

    def _preprocess_pyformat_query(self, command: str, params: Any = None) -> str:
        converter = SnowflakeConverter()
        if params is None:
            return command
        return command % tuple(converter.quote(converter.escape(converter.to_snowflake(p))) for p in params)


class FakeConnection:
    """``session._conn`` as snowflake-ml's ``query_helper.run_query`` calls it: a result dict plus cursor metadata.

    The jobs answers are tried before the registry's: ``DESCRIBE SERVICE IDENTIFIER(...)`` of a job must not reach
    the registry's ``DESCRIBE SERVICE <name>`` answer. Anything else goes to the connection another fake put there
    first (e.g. fake_batch.py's), else through ``session.execute`` as usual."""

    def __init__(self, session: RecordingSession, handlers: fake_snowflake.Handlers, inner: Any = None) -> None:
        self._session = session
        self._handlers = handlers
        self._inner = inner
        self._cursor = FakeCursor()

    def _answer(self, text: str) -> list[Row] | None:
        text = " ".join(text.split()) if "SYSTEM$" not in text else text.strip()  # as RecordingSession.execute
        for pattern, handler in self._handlers:
            match = re.search(pattern, text, re.DOTALL | re.IGNORECASE)
            if match:
                with self._session._lock:
                    self._session.statements.append(text)
                try:
                    return handler(match)
                except UnknownJob:
                    if self._inner is None:
                        raise
                    self._session.statements.pop()  # another fake's job (e.g. a batch job): its answer, recorded there
                    return None
        return None if self._inner is not None else self._session.execute(text, None)

    def run_query(self, query: str, params: Any = None, **options: Any) -> dict[str, Any]:
        rows = self._answer(_bind_qmark(query, params))
        if rows is None:
            result = self._inner.run_query(query, params, **options)
            self._cursor.description = self._inner._cursor.description
            return result
        names = list(rows[0].asDict()) if rows else []
        self._cursor.description = [ResultMetadata(name, 2, None, None, None, None, True) for name in names]
        return {"data": [tuple(row) for row in rows]}


class FakeStageFiles(FakeFileOperation):
    """``session.file`` as the jobs code uses it, on top of the shared fake: PUT of a wildcard pattern (the payload
    upload), PUT of a stream (``put_stream``: system scripts, requirements, the job result), and GET of one file
    (the result download). As Snowflake's PUT, an existing file is skipped unless ``overwrite=True``."""

    def __init__(self, session: RecordingSession) -> None:
        super().__init__(session)
        self._uploaded = session.account.uploaded

    def _store(self, path: str, data: bytes, overwrite: bool) -> None:
        if overwrite or path not in self._uploaded:
            self._uploaded[path] = data

    def put(self, local_file_name: str, stage_location: str, *, overwrite: bool = False, **_: Any) -> list:
        files = sorted(glob.glob(local_file_name))
        if not files:
            raise SnowparkSQLException(f"253006: File doesn't exist: ['{local_file_name}']")
        for name in files:
            self._store(f"{stage_location.rstrip('/')}/{Path(name).name}", Path(name).read_bytes(), overwrite)
        return []

    def put_stream(self, input_stream: io.IOBase, stage_location: str, *, overwrite: bool = False, **_: Any) -> None:
        input_stream.seek(0)  # the connector uploads the whole stream (file_transfer_agent.py seeks to 0)
        self._store(stage_location, input_stream.read(), overwrite)

    def get(self, stage_location: str, target_directory: str, **kwargs: Any) -> list:
        if stage_location not in self._uploaded:
            return super().get(stage_location, target_directory, **kwargs)
        target = Path(target_directory, PurePosixPath(stage_location).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self._uploaded[stage_location])
        return [Row(file=target.name, status="DOWNLOADED")]


def _fqn(session: RecordingSession, name: str) -> str:
    return fake_tables.table_key(session.account, name)


class UnknownJob(SnowparkSQLException):
    """A job service this fake did not create (Snowflake's "does not exist", error 2003)."""


def _stage_error(name: str) -> SnowparkSQLException:
    return SnowparkSQLException(
        f"002003 (02000): SQL compilation error: Stage '{name}' does not exist or not authorized.", sql_error_code=2003)


def jobs_handlers(session: RecordingSession) -> fake_snowflake.Handlers:
    """Give ``session`` the jobs surface (see module docstring) and return the answers to the jobs statements."""
    jobs = FakeJobs(session)
    session.ml_jobs = jobs
    session.file = FakeStageFiles(session)
    session.get_current_warehouse = lambda: '"SPCS_LLM_WH"'

    def describe_stage(m: re.Match) -> list[Row]:
        name = _fqn(session, m[1])
        if name not in jobs.stages:
            raise _stage_error(name)
        return [Row(parent_property="STAGE_LOCATION", property="URL", property_value="")]

    def create_stage(m: re.Match) -> list[Row]:
        jobs.stages.add(_fqn(session, m[1]))
        return [Row(status="Stage area successfully created.")]

    def runtime(m: re.Match) -> list[Row]:
        family = session.account.compute_pools.get(_unquote(m[1]))
        if family is None:
            raise _not_found(f"Compute pool '{_unquote(m[1])}'")
        return [Row(**{"SYSTEM$GET_ML_JOB_RUNTIME": RUNTIME_IMAGES[family.startswith("GPU")]})]

    def execute_job(m: re.Match) -> list[Row]:
        name, pool, spec_json, options_json = _literals(m[1])
        if _unquote(pool) not in session.account.compute_pools:
            raise _not_found(f"Compute pool '{_unquote(pool)}'")
        spec_options, job_options = json.loads(spec_json), json.loads(options_json)
        stage = spec_options["STAGE_PATH"]
        for arg in spec_options["ARGS"]:  # stricter than known: every payload file the command names was uploaded
            if str(arg).startswith(STAGE_MOUNT) and f"{stage}{str(arg)[len(STAGE_MOUNT):]}" not in jobs.uploaded:
                raise SnowparkSQLException(f"Job payload file {arg} is not on stage {stage}.")
        job_id = f"{name.rstrip('_')}_{uuid.uuid4().hex[:6].upper()}" if name.endswith("_") else name
        job = FakeJob(job_id, _unquote(pool), spec_options, job_options, jobs.next_outcome)
        jobs.jobs[job_id] = job
        _write_result(session, job)
        return [Row(**{"SYSTEM$EXECUTE_ML_JOB": job_id})]

    def job(fqn: str) -> FakeJob:
        found = jobs.jobs.get(_fqn(session, fqn))
        if found is None:
            raise UnknownJob(_not_found(f"Service '{_last(fqn)}'").message, sql_error_code=2003)
        return found

    def wait_for(m: re.Match) -> list[Row]:
        """inferred: spcs_wait_for returns once the job ends and errors when it does not end in time (snowflake-ml
        jobs/job.py then falls back to polling DESCRIBE SERVICE)."""
        found = job(m[1])
        found.status = found.outcome.status
        if found.status not in TERMINAL:
            raise SnowparkSQLException(f"Timed out waiting for service {found.id} to reach DONE.")
        return [Row(status=found.status)]

    def describe_service(m: re.Match) -> list[Row]:
        found = job(m[1])
        db, schema, name = found.id.split(".")
        return [Row(name=name, database_name=db, schema_name=schema, status=found.status,
                    compute_pool=found.compute_pool, target_instances=found.job_options.get("TARGET_INSTANCES") or 1,
                    spec=found.spec())]

    def job_history(m: re.Match) -> list[Row]:
        """snowflake.spcs.get_job_history rows (snowflake-ml jobs/job.py ``_get_service_info_spcs``)."""
        found = jobs.jobs.get(f"{m[1]}.{m[2]}.{m[3]}")
        return [] if found is None else [Row(DATABASE_NAME=m[1], SCHEMA_NAME=m[2], NAME=m[3], STATUS=found.status,
                                             COMPUTE_POOL_NAME=found.compute_pool, PARAMETERS="{}")]

    def logs(m: re.Match) -> list[Row]:
        found = job(m[1])
        if found.outcome.logs is None:
            raise SnowparkSQLException(f"Service {found.id} has no container logs.")
        return [Row(**{"SYSTEM$GET_SERVICE_LOGS": found.outcome.logs})]

    def persistent_logs(m: re.Match) -> list[Row]:
        """inferred: an account without persistent job logs answers the SPCS log function with error 2143 (the code
        snowflake-ml jobs/job.py _get_logs checks before falling back to the event table)."""
        raise SnowparkSQLException("Persistent logs are not enabled for this account.", sql_error_code=2143)

    def list_stage(m: re.Match) -> list[Row]:
        """LIST @stage/prefix: the files whose path starts with it (name as stage/path, lower-case like Snowflake's)."""
        stage, _, prefix = m[1].partition("/")
        stage = _fqn(session, stage)
        if stage not in jobs.stages | {_fqn(session, path.split("/")[0].lstrip("@")) for path in jobs.uploaded}:
            raise _stage_error(stage)
        folder = f"@{stage}/"
        return [Row(name=f"{_last(stage).lower()}/{path[len(folder):]}", size=len(data), md5=None, last_modified=None)
                for path, data in sorted(jobs.uploaded.items()) if path.startswith(folder + prefix)]

    def describe_table(m: re.Match) -> list[Row]:
        table = fake_tables.find_table(session.account, m[1])
        if table is None:
            raise _not_found(f"Table '{_last(m[1])}'")
        return [Row(name=column.upper(), type=kind, kind="COLUMN") for column, kind in table.columns.items()]

    def count_rows(m: re.Match) -> list[Row]:
        instruction, output, name = m[1], m[2], m[3]
        table = jobs.tables[_fqn(session, name)]

        def empty(row: dict[str, Any], column: str) -> bool:
            value = {key.upper(): v for key, v in row.items()}.get(column.upper())
            return value is None or not str(value).strip()

        bad = sum(1 for row in table.rows if empty(row, instruction) or empty(row, output))
        return [Row(TOTAL_ROWS=len(table.rows), EMPTY_ROWS=bad)]

    handlers = [
        (r"^describe stage identifier\('([\w.\"]+)'\)$", describe_stage),
        (r"^create stage if not exists identifier\('([\w.\"]+)'\) encryption = \( type = 'SNOWFLAKE_SSE' \)",
         create_stage),
        (r"^CREATE STAGE IF NOT EXISTS ([\w.\"]+) ENCRYPTION = \(TYPE = 'SNOWFLAKE_SSE'\)$", create_stage),
        (r"^CALL SYSTEM\$GET_ML_JOB_RUNTIME\('(\w+)', '.*'\)$", runtime),
        (r"^CALL SYSTEM\$EXECUTE_ML_JOB\((.*)\)$", execute_job),
        (r"^call ([\w.\"]+)!spcs_wait_for\('DONE', \d+\)$", wait_for),
        (r"^DESCRIBE SERVICE IDENTIFIER\('([\w.\"]+)'\)$", describe_service),
        (r"^select DATABASE_NAME, SCHEMA_NAME, NAME, STATUS, COMPUTE_POOL_NAME, PARAMETERS from "
         r"table\(snowflake\.spcs\.get_job_history\(\)\) where database_name = '(\w+)' and schema_name = '(\w+)' "
         r"and name = '(\w+)'$", job_history),
        (r"^SELECT LOG FROM table\(([\w.\"]+)!spcs_get_logs\(", persistent_logs),
        (r"^SHOW PARAMETERS LIKE 'event_table' IN ACCOUNT$", lambda m: [Row(key="EVENT_TABLE", value="NONE")]),
        (r"^SELECT VALUE FROM IDENTIFIER\('NONE'\) WHERE", lambda m: []),
        (r"^SELECT SYSTEM\$GET_SERVICE_LOGS\('([\w.\"]+)', 0, 'main'(?:, \d+)?\)$", logs),
        (r"^LIST @([\w.\"]+(?:/[\w./-]*)?)$", list_stage),
        (r"^DESCRIBE TABLE ([\w.\"]+)$", describe_table),
        (r"^SELECT COUNT\(\*\) AS TOTAL_ROWS, COUNT_IF\(NULLIF\(TRIM\((\w+)\), ''\) IS NULL OR "
         r"NULLIF\(TRIM\((\w+)\), ''\) IS NULL\) AS EMPTY_ROWS FROM ([\w.\"]+)$", count_rows),
    ]
    session._conn = FakeConnection(session, handlers, getattr(session, "_conn", None))
    return handlers


def _write_result(session: RecordingSession, job: FakeJob) -> None:
    """What the launcher leaves on the stage when the job ends: its return value or error, saved with
    snowflake-ml's own serializer (``mljob_launcher.py`` ``save_mljob_result_v2``)."""
    from snowflake.ml.jobs._interop import results, utils

    outcome = job.outcome
    if outcome.status != "DONE" and outcome.error is None:
        return
    value = outcome.error if outcome.error is not None else outcome.value
    if value is DERIVED:
        value = _entry_script_report(session, job)
    utils.save(results.ExecutionResult(success=outcome.error is None, value=value),
               f"{job.stage_path}/{RESULT_PATH}", session=session)


def _entry_script_report(session: RecordingSession, job: FakeJob) -> dict[str, Any]:
    """The report and adapter folder ``job_main.run`` leaves for these arguments (losses made up, falling)."""
    args = job.args
    value = {flag: args[index + 1] for index, flag in enumerate(args[:-1]) if flag.startswith("--") and "=" not in flag}
    if "--table" in value:
        examples = len(session.ml_jobs.tables[_fqn(session, value["--table"])].rows)
    else:
        examples = len([line for line in session.account.uploaded[value["--data-file"]].splitlines() if line.strip()])
    steps, output = int(value["--max-steps"]), value["--output"].rstrip("/")
    report = {"adapter_location": value["--output"], "base_model": value["--base-model"], "examples": examples,
              "steps": steps, "losses": [round(2.5 * 0.95 ** step, 4) for step in range(steps)], "seconds": 1.5 * steps}
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": int(value["--rank"]),
              "lora_alpha": int(value["--alpha"]), "base_model_name_or_path": value["--base-model"],
              "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    session.account.uploaded[f"{output}/adapter_config.json"] = json.dumps(config).encode()
    session.account.uploaded[f"{output}/adapter_model.safetensors"] = b"\0" * 16
    session.account.uploaded[f"{output}/training_report.json"] = json.dumps(report).encode()
    return report


def payload_files(session: RecordingSession, job_id: str) -> dict[str, bytes]:
    """The files uploaded for a job's payload, by path relative to its stage folder."""
    stage = session.ml_jobs.jobs[job_id].stage_path
    return {path[len(stage) + 1:]: data for path, data in session.ml_jobs.files_under(stage).items()}


if jobs_handlers not in fake_snowflake.HANDLER_EXTENSIONS:
    fake_snowflake.HANDLER_EXTENSIONS.append(jobs_handlers)
