"""Bulk inference inside Snowflake: a deployed chat or embedding model over a table, into an output table.

Two paths (``mode``):

* ``service`` — the model's running service, called as a SQL service function (``svc!__CALL__(...)``) in
  ``INSERT … SELECT`` statements. No start-up; suits small tables (``SERVICE_THRESHOLD_ROWS``).
* ``job`` — ``ModelVersion.run_batch``: a batch inference job on the compute pool with ``replicas`` nodes, reading
  the numbered input from a stage and writing Parquet that is loaded into the output table. Suits millions of rows.

``auto`` takes the service path when the model has a live service and the table is small, else a job.
``plan_batch_inference`` checks everything it can before any write and returns the plan (SQL, cost estimate);
``run.execute`` runs it, ``job_spec.plan_sql`` prints it. The output table has one row per input row: ``ROW_ID``,
the text, ``RESPONSE`` (the model's output object) and ``ERROR`` (NULL, or why that row has no answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.deploy.batch.estimate import BatchEstimate, estimate_batch
from spcs_llm.deploy.batch.sql import BatchTables, JobLocations, ModelInput, qualified_table, service_function_call
from spcs_llm.deploy.names import DeploymentNames, is_identifier
from spcs_llm.deploy.services.catalog import ModelSpec, resolve_model
from spcs_llm.deploy.services.deployer import check_pool_fits
from spcs_llm.deploy.services.engine import EngineOptions
from spcs_llm.deploy.services.lifecycle import LIVE_STATES, describe_pool
from spcs_llm.deploy.services.pools import pool_billing
from spcs_llm.deploy.services.registry_ops import open_registry

Mode = Literal["auto", "job", "service"]
Engine = Literal["auto", "vllm", "python"]
SERVICE_THRESHOLD_ROWS = 10_000
DEFAULT_STAGE = "SPCS_LLM_BATCH"


@dataclass(frozen=True)
class BatchRequest:
    """What to run. ``model`` is a catalog key or Hub id, as for ``spcs-llm deploy``; ``model_name`` /
    ``service_name`` / ``version`` name the registry objects when they differ from the catalog's."""

    model: str
    input_table: str
    text_column: str
    output_table: str
    mode: Mode = "auto"
    version: str = "V1"
    model_name: str | None = None
    service_name: str | None = None
    compute_pool: str | None = None
    replicas: int = 1
    engine: Engine = "auto"  # auto: vLLM for chat models on a GPU, as ``spcs-llm deploy`` chooses (engine.py)
    max_model_len: int | None = None  # vLLM settings of the job, checked like the deployment's
    engine_args: tuple[str, ...] = ()
    adapter: str | None = None
    adapter_version: str = "V1"
    system_prompt: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    overwrite: bool = False
    stage: str = DEFAULT_STAGE
    seconds_per_row: float | None = None
    dollars_per_credit: float = 3.0
    service_threshold_rows: int = SERVICE_THRESHOLD_ROWS


@dataclass(frozen=True)
class BatchPlan:
    request: BatchRequest
    spec: ModelSpec
    mode: Literal["job", "service"]
    engine: Literal["vllm", "python"]
    rows: int
    tables: BatchTables
    model_input: ModelInput
    function_name: str  # SQL name (``__CALL__``)
    target_method: str  # the model method (``__call__``), what run_batch's FUNCTION names
    params: dict[str, Any]  # generation params sent with every row (signature params only)
    params_sql: tuple[str, ...]  # every signature param in order, as SQL literals (service function arguments)
    service_fqn: str
    pool: str
    instance_family: str
    locations: JobLocations
    estimate: BatchEstimate
    model_version: Any = field(compare=False, repr=False)
    adapter_version: Any = field(compare=False, repr=False)

    @property
    def function_call(self) -> str:
        return service_function_call(self.service_fqn, self.function_name,
                                     self.model_input.expression(self.tables.text_column), list(self.params_sql))


def _refuse_bad_options(request: BatchRequest, spec: ModelSpec, engine: str) -> None:
    if request.replicas < 1:
        raise ConfigurationError(f"replicas must be at least 1, not {request.replicas}.",
                                 fix="Pass --replicas 1 or more.")
    if not is_identifier(request.text_column):
        raise ConfigurationError(f"Text column {request.text_column!r} is not a column name this command accepts.",
                                 fix="Pass --text-column with an unquoted column name (letters, digits, _, $).")
    for what, flag, value in (("Adapter", "--adapter", request.adapter), ("Version", "--version", request.version),
                              ("Adapter version", "--adapter-version", request.adapter_version)):
        if value is not None and not is_identifier(value):
            raise ConfigurationError(f"{what} {value!r} is not a plain Snowflake identifier.",
                                     fix=f"Pass {flag} with letters, digits and _ only, starting with a letter.")
    if spec.kind == "embedding" and (request.system_prompt or request.adapter
                                     or request.max_tokens is not None or request.temperature is not None):
        raise ConfigurationError(
            f"{spec.key} is an embedding model: system prompt, adapter, max tokens and temperature apply to "
            "chat models only.", fix="Leave those options out for an embedding model.")
    if request.adapter and engine != "vllm":
        raise ConfigurationError(
            "A LoRA adapter needs the vLLM engine: the Python engine takes no model parameter and would answer with "
            "the base model.", fix="Pass --engine vllm (and deploy the model with --engine vllm).")


def _text_column(session: Any, table: str, column: str) -> str:
    """The column as Snowflake spells it (exact match first, then case-insensitive)."""
    try:
        rows = session.sql(f"SHOW COLUMNS IN TABLE {table}").collect()
    except Exception as exc:  # noqa: BLE001 - Snowpark raises its SQL error; the message names the fix
        raise DeploymentError(f"Input table {table} cannot be read: {exc}",
                              fix=f"Check the name and GRANT SELECT ON TABLE {table} to the deploying role.") from None
    names = [str(row["column_name"]) for row in rows]
    match = next((name for name in names if name == column), None) or \
        next((name for name in names if name.upper() == column.upper()), None)
    if match is None:
        raise ConfigurationError(f"Input table {table} has no column {column!r} (columns: {', '.join(names)}).",
                                 fix="Pass --text-column with one of those columns.")
    return match


def _refuse_existing_output(session: Any, table: str, overwrite: bool) -> None:
    database, schema, name = table.split(".")
    if overwrite:
        return
    if session.sql(f"SHOW TABLES LIKE '{name}' IN SCHEMA {database}.{schema}").collect():
        raise ConfigurationError(f"Output table {table} already exists; it is not overwritten silently.",
                                 fix="Pass another --output-table, or --overwrite to replace it.")


def _model_version(registry: Any, model_name: str, version: str, what: str, fix: str) -> Any:
    try:
        return registry.get_model(model_name).version(version)
    except Exception as exc:  # noqa: BLE001 - snowml raises ValueError/SnowflakeMLException for a missing object
        raise DeploymentError(f"{what} {model_name} version {version} is not in the registry ({exc}).",
                              fix=fix) from None


def _function(model_version: Any, spec: ModelSpec) -> dict[str, Any]:
    """The method to call: ``__call__`` for chat, ``encode`` for embeddings (``ModelVersion.show_functions``)."""
    functions = model_version.show_functions()
    chosen = next((f for f in functions if f["target_method"] == spec.route), None)
    if chosen is None and len(functions) == 1:
        chosen = functions[0]
    if chosen is None:
        methods = [f["target_method"] for f in functions]
        raise DeploymentError(f"{spec.model_name} has no {spec.route} method ({methods}).",
                              fix="Deploy the model with `spcs-llm deploy`, which logs the method the batch calls.")
    if len(chosen["signature"].inputs) != 1:
        raise ConfigurationError(
            f"{spec.model_name}.{chosen['target_method']} takes {len(chosen['signature'].inputs)} input columns; the "
            "batch builds one (messages, or the text).",
            fix="Log the model with a one-input signature (OpenAI-chat with params, or a text encoder).")
    return chosen


def _model_input(function: dict[str, Any], spec: ModelSpec, system_prompt: str | None) -> ModelInput:
    feature = function["signature"].inputs[0]
    if spec.kind == "chat":
        # FeatureGroupSpec.to_dict() (public, model/_signatures/core.py): a group lists its members under "specs".
        members = feature.to_dict().get("specs") or []
        content: dict[str, Any] = next((member for member in members if member.get("name") == "content"), {})
        return ModelInput(feature.name, chat=True, content_parts=bool(content.get("specs")),
                          system_prompt=system_prompt)
    return ModelInput(feature.name, chat=False)


def _params(function: dict[str, Any], request: BatchRequest) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Generation params, validated against the signature by snowml's own code (``_client/ops/param_utils.py``,
    private: through ``spcs_llm.deploy.snowml_private``)."""
    from spcs_llm.deploy import snowml_private

    wanted = {"max_completion_tokens": request.max_tokens, "temperature": request.temperature,
              "model": request.adapter}
    params = {name: value for name, value in wanted.items() if value is not None}
    signature_params = function["signature"].params
    if params and not signature_params:
        raise ConfigurationError(f"This model's signature takes no parameters, so {', '.join(params)} cannot be set.",
                                 fix="Leave out --max-tokens/--temperature/--adapter, or redeploy with "
                                     "`spcs-llm deploy`.")
    try:
        resolved = snowml_private.resolve_params(params or None, signature_params)
    except DeploymentError:
        raise
    except Exception as exc:  # noqa: BLE001 - snowml wraps the ValueError; keep its text
        raise ConfigurationError(f"Invalid generation parameter: {exc}", fix="Correct the value.") from None
    return params, tuple(snowml_private.param_sql(value) for _, value in resolved)


def _service_status(session: Any, names: DeploymentNames, service: str) -> str | None:
    rows = session.sql(f"SHOW SERVICES LIKE '{service}' IN SCHEMA {names.schema_fqn}").collect()
    return next((str(row["status"]).upper() for row in rows if str(row["name"]).upper() == service), None)


def _choose_mode(request: BatchRequest, rows: int, service_status: str | None,
                 service_fqn: str) -> Literal["job", "service"]:
    live = service_status in LIVE_STATES
    if request.mode == "service" and not live:
        raise DeploymentError(f"The service path needs the model's service {service_fqn}, which is "
                              f"{'missing' if service_status is None else service_status}.",
                              fix="Deploy it with `spcs-llm deploy <model>`, or pass --mode job.")
    if request.mode == "auto":
        return "service" if live and rows < request.service_threshold_rows else "job"
    return request.mode


def _pool(session: Any, request: BatchRequest, names: DeploymentNames,
          spec: ModelSpec) -> tuple[str, str, float | None]:
    pool = (request.compute_pool or names.pool_for(spec.uses_gpu)[0]).upper()
    billing = pool_billing(describe_pool(session, pool))
    try:
        check_pool_fits(spec, pool, billing.instance_family)
    except DeploymentError as exc:
        raise DeploymentError(exc.message, fix=f"Pass --compute-pool with a pool of {spec.instance_family} or "
                                               "larger.") from None
    return pool, billing.instance_family, billing.credits_per_node_hour


@dataclass(frozen=True)
class CheckedRequest:
    """What a request resolves to without a connection: the model, its engine and the qualified names."""

    spec: ModelSpec
    engine: Literal["vllm", "python"]
    input_table: str
    output_table: str
    stage: str


def check_request(names: DeploymentNames, request: BatchRequest) -> CheckedRequest:
    """Every check that needs no connection (model, engine settings, names, numbers), each with its fix."""
    engine_options = EngineOptions(None if request.engine == "auto" else request.engine,
                                   max_model_len=request.max_model_len, extra_args=tuple(request.engine_args))
    spec = resolve_model(request.model, model_name=request.model_name, service_name=request.service_name,
                         engine=engine_options)
    engine: Literal["vllm", "python"] = "vllm" if spec.engine.is_vllm else "python"
    _refuse_bad_options(request, spec, engine)
    input_table = qualified_table(request.input_table, names.database, names.schema, "Input table")
    output_table = qualified_table(request.output_table, names.database, names.schema, "Output table")
    if input_table == output_table:
        raise ConfigurationError("The output table is the input table.", fix="Pass another --output-table.")
    stage = qualified_table(request.stage, names.database, names.schema, "Stage")
    return CheckedRequest(spec, engine, input_table, output_table, stage)


def plan_batch_inference(session: Any, names: DeploymentNames, request: BatchRequest, *,
                         clock: Callable[[], float] = time.time) -> BatchPlan:
    """Check the request (options first, then read-only SQL) and return the plan; nothing is written yet."""
    checked = check_request(names, request)
    spec, engine, input_table, output_table, stage = (checked.spec, checked.engine, checked.input_table,
                                                      checked.output_table, checked.stage)
    text_column = _text_column(session, input_table, request.text_column)
    _refuse_existing_output(session, output_table, request.overwrite)
    pool, family, rate = _pool(session, request, names, spec)
    registry = open_registry(session, names)
    model_version = _model_version(registry, spec.model_name, request.version.upper(), "Model",
                                   f"Deploy it first: spcs-llm deploy {spec.key}")
    adapter_version = None if not request.adapter else _model_version(
        registry, request.adapter.upper(), request.adapter_version.upper(), "Adapter",
        "Log the adapter first (spcs_llm.deploy.adapters.registration.log_adapter) and pass its registry name.")
    function = _function(model_version, spec)
    params, params_sql = _params(function, request)
    service_fqn = names.qualify(spec.service_name)
    rows = int(session.sql(f"SELECT COUNT(*) AS ROW_COUNT FROM {input_table}").collect()[0]["ROW_COUNT"])
    if rows == 0:
        raise ConfigurationError(f"Input table {input_table} is empty.", fix="Pass a table with rows to score.")
    mode = _choose_mode(request, rows, _service_status(session, names, spec.service_name), service_fqn)
    run_id = time.strftime("%Y%m%d_%H%M%S", time.gmtime(clock()))
    tables = BatchTables(input_table, text_column, names.qualify(f"SPCS_LLM_BATCH_INPUT_{run_id}"), output_table)
    return BatchPlan(
        request=request, spec=spec, mode=mode, engine=engine, rows=rows, tables=tables,
        model_input=_model_input(function, spec, request.system_prompt), function_name=str(function["name"]),
        target_method=str(function["target_method"]), params=params, params_sql=params_sql,
        service_fqn=service_fqn, pool=pool, instance_family=family,
        locations=JobLocations(stage, run_id, f"SPCS_LLM_BATCH_{spec.model_name}_{run_id}"),
        estimate=estimate_batch(rows=rows, mode=mode, kind=spec.kind, engine=engine, instance_family=family,
                                credits_per_node_hour=rate, nodes=request.replicas if mode == "job" else 1,
                                dollars_per_credit=request.dollars_per_credit, seconds_per_row=request.seconds_per_row),
        model_version=model_version, adapter_version=adapter_version,
    )


def reply_query(plan: BatchPlan) -> str:
    """How to read the answers afterwards (the notebook prints it too)."""
    return answers_query(plan.spec.kind, plan.tables.output_table)


def answers_query(kind: str, table: str) -> str:
    """How to read the answers of a ``kind`` ("chat" or "embedding") model from its output table."""
    if kind == "chat":
        return (f"SELECT ROW_ID, RESPONSE:choices[0]:message:content::VARCHAR AS REPLY, ERROR FROM {table} "
                "ORDER BY ROW_ID;")
    return f"SELECT ROW_ID, RESPONSE, ERROR FROM {table} ORDER BY ROW_ID;  -- RESPONSE holds the embedding"

