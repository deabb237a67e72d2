"""``--dry-run``: what a command would run — SQL and snowflake-ml calls with their arguments — without a session.

Every value is what the real run would use, decided by the same functions (``service_arguments``,
``wrapper_arguments``, ``submit_arguments``, ``BatchTables``, ``FinetunePlan.create_sql``); what only the account
knows (row counts, the ingress host, the pool's instance family, the model's signature) is a placeholder in angle
brackets, e.g. ``<ingress host: known after deploy>``. Nothing here imports snowflake or opens a session, so a
preview runs on any machine and bills nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from spcs_llm.deploy.names import DeploymentNames
from spcs_llm.deploy.services.catalog import ModelSpec

INGRESS_HOST = "<ingress host: known after deploy>"
ACCOUNT_URL = "https://<account>.snowflakecomputing.com"
ROWS = "<rows: counted on the account>"
RUN_ID = "<run id: UTC time of the run>"
STATUS = "<status: known after deploy>"
MODEL_VERSION = "<model version: from the registry>"
INPUT_COLUMN = "<input column: the table's, when it has one>"
SIGNATURE_PARAMS = "<every signature param in order: read from the registry>"


def header(command: str) -> str:
    return (f"-- Dry run of `spcs-llm {command}`: nothing was sent to Snowflake and nothing is billed. <...> marks "
            "what only the account knows; the real run checks it first.")


def _value(value: Any) -> str:
    if isinstance(value, Placeholder):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_value(k)}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_value(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    return repr(value)


class Placeholder(str):
    """A value only the account knows, shown as is (no quotes)."""

    def __repr__(self) -> str:
        return str(self)


def call(name: str, positional: Sequence[Any] = (), keywords: Mapping[str, Any] | None = None) -> str:
    """``name(a, b, key=value, ...)``, one argument per line, values as Python literals (placeholders bare)."""
    parts = [_value(item) for item in positional]
    parts += [f"{key}={_value(value)}" for key, value in (keywords or {}).items()]
    if not parts:
        return f"{name}()"
    return f"{name}(\n" + ",\n".join("    " + part.replace("\n", "\n    ") for part in parts) + "\n)"


def _settings_block(spec: ModelSpec, names: DeploymentNames, service_fqn: str, caller_role: str,
                    dollars_per_credit: float, adapter: str | None = None) -> str:
    from spcs_llm.deploy.services.connection import DeployedModel, connection_block

    pool_family = spec.instance_family  # the pool's own family is read on the account (SHOW COMPUTE POOLS)
    deployed = DeployedModel(spec=spec, model_fqn=names.qualify(spec.model_name), version="", service_fqn=service_fqn,
                             status=STATUS, ingress_host=INGRESS_HOST, instance_family=pool_family,
                             caller_role=caller_role, adapter=adapter)
    return connection_block(deployed, dollars_per_credit=dollars_per_credit)


def deploy_preview(spec: ModelSpec, names: DeploymentNames, options: Any, *, dollars_per_credit: float,
                   command: str, adapters: Mapping[str, str] | None = None,
                   adapter_steps: Sequence[str] = ()) -> str:
    """The deployer's steps for ``spec`` (``Deployer.deploy``): checks, log_model, create_service, grant, settings."""
    from spcs_llm.deploy.services.deployer import service_arguments
    from spcs_llm.deploy.services.estimate import estimate
    from spcs_llm.deploy.services.registry_ops import log_model_arguments, wrapper_arguments

    pool, _family = names.pool_for(spec.uses_gpu)
    service_fqn = names.qualify(spec.service_name)
    caller_role = (options.caller_role or names.user_role).upper()
    class_name, positional, keywords = wrapper_arguments(spec, names)
    log_keywords: dict[str, Any] = dict(log_model_arguments(spec, options.version_name))
    if spec.attach_chat_template:
        log_keywords["signatures"] = Placeholder("openai_signatures.OPENAI_CHAT_WITH_PARAMS_SIGNATURE")
    arguments = service_arguments(spec, names, service_fqn, pool, options,
                                  {alias: Placeholder(text) for alias, text in (adapters or {}).items()})
    replaced = ("dropped and logged again (--replace-version)" if options.replace_version
                else f"kept when {names.qualify(spec.model_name)} {options.version_name} is already registered")
    lines = [
        header(command),
        "-- " + estimate(spec, dollars_per_credit).text(),
        "-- 1. checks (read-only): the pools exist and the model fits the pool's nodes",
        f"SHOW COMPUTE POOLS LIKE '{pool}';",
        f"SHOW COMPUTE POOLS LIKE '{names.cpu_pool}';",
        f"-- 2. the model version, {replaced}",
        f"registry = snowflake.ml.registry.Registry(session, database_name={names.database!r}, "
        f"schema_name={names.schema!r})",
        "model_version = " + call("registry.log_model", [Placeholder(call(f"huggingface.{class_name}", positional,
                                                                          keywords))], log_keywords),
        *adapter_steps,
        "-- 3. the service, kept when it is already live" + (" (--replace: dropped and created again)"
                                                              if options.replace_service else ""),
        call("model_version.create_service", (), arguments),
        f"-- then wait up to {options.wait.timeout_s:g} s for RUNNING, polling every {options.wait.poll_interval_s:g} "
        "s (ModelVersion.list_services)",
        "-- 4. access for the callers",
        f"GRANT SERVICE ROLE {service_fqn}!ALL_ENDPOINTS_USAGE TO ROLE {caller_role};",
        "-- 5. the Dataiku settings printed at the end:",
        _settings_block(spec, names, service_fqn, caller_role, dollars_per_credit),
    ]
    for alias in adapters or {}:
        lines.append(_settings_block(spec, names, service_fqn, caller_role, dollars_per_credit, adapter=alias))
    return "\n".join(lines)


def adapters_preview(spec: ModelSpec, names: DeploymentNames, options: Any, requests: Sequence[Any], *,
                     adapter_version: str, dollars_per_credit: float) -> str:
    """``serve-adapters``: each adapter logged pinned to the base version, then one vLLM service for all."""
    steps = ["-- 2b. each adapter, kept when already registered (adapters.find_logged_adapter); a merged copy is "
             "logged instead where the account has no LoRA support (needs --base-model-dir)"]
    for request in requests:
        folder = (f"<local copy of {request.location} (GET)>" if request.on_stage else request.location)
        steps.append(f"{request.model_name.lower()} = " + call("registry.log_model", [Placeholder(call(
            "huggingface.PeftAdapter", (), dict(base_model=Placeholder("model_version"),
                                               adapter_path=Placeholder(folder) if request.on_stage else folder)))],
            dict(model_name=request.model_name, version_name=adapter_version,
                 comment=f"spcs-llm: LoRA adapter {request.alias}", target_platforms=["SNOWPARK_CONTAINER_SERVICES"])))
    adapters = {request.alias: request.model_name.lower() for request in requests}
    return deploy_preview(spec, names, options, dollars_per_credit=dollars_per_credit,
                          command=f"serve-adapters {spec.key}", adapters=adapters, adapter_steps=steps)


def batch_preview(names: DeploymentNames, request: Any) -> str:
    """``batch``: the statements of the service path and/or the ``run_batch`` job path (``job_spec.plan_sql``)."""
    from spcs_llm.deploy.batch.plan import SERVICE_THRESHOLD_ROWS, BatchPlan, answers_query, check_request
    from spcs_llm.deploy.batch.sql import BatchTables, JobLocations, ModelInput, service_function_call

    checked = check_request(names, request)
    spec = checked.spec
    # The input the model gets follows its registry signature; `spcs-llm deploy` logs chat models with the OpenAI
    # chat signature whose content is a list of parts (openai_signatures.py _OPENAI_CHAT_WITH_PARAMS_SPEC).
    model_input = (ModelInput("messages", chat=True, content_parts=True, system_prompt=request.system_prompt)
                   if spec.kind == "chat" else ModelInput("<input of the model's signature>", chat=False))
    text_column = request.text_column.upper()  # the run uses the table's own spelling (SHOW COLUMNS)
    tables = BatchTables(checked.input_table, text_column, names.qualify(f"SPCS_LLM_BATCH_INPUT_{RUN_ID}"),
                         checked.output_table)
    service_fqn = names.qualify(spec.service_name)
    pool = (request.compute_pool or names.pool_for(spec.uses_gpu)[0]).upper()
    wanted = {"max_completion_tokens": request.max_tokens, "temperature": request.temperature,
              "model": request.adapter}
    params = {name: value for name, value in wanted.items() if value is not None}
    modes = ("service", "job") if request.mode == "auto" else (request.mode,)
    lines = [header(f"batch {spec.key}"),
             f"-- {spec.key} over {checked.input_table} ({ROWS}) → {checked.output_table}: "
             + (f"service path if {service_fqn} is live and the table has under {SERVICE_THRESHOLD_ROWS:,} rows, "
                f"else a job on {pool}" if request.mode == "auto" else f"{request.mode} path")
             + (f", engine {checked.engine}" if "job" in modes else ""),
             "-- Estimate: made by the real run from the row count and the pool's instance family (both read on the "
             "account), printed before anything runs; it asks before billing.",
             "-- checks (read-only):",
             f"SHOW COLUMNS IN TABLE {checked.input_table};",
             f"SELECT COUNT(*) AS ROW_COUNT FROM {checked.input_table};",
             f"SHOW COMPUTE POOLS LIKE '{pool}';",
             f"SHOW SERVICES LIKE '{spec.service_name}' IN SCHEMA {names.schema_fqn};",
             tables.number_input() + ";", tables.create_output(request.overwrite) + ";"]
    if "service" in modes:
        call_sql = service_function_call(service_fqn, spec.route.upper(), model_input.expression(text_column),
                                         [SIGNATURE_PARAMS])
        lines += ["-- service path: spcs-llm runs this in chunks of rows and isolates failing rows, each with its "
                  "own ERROR", tables.service_insert(call_sql) + ";"]
    if "job" in modes:
        from spcs_llm.deploy.batch.run import job_arguments, missing_row_error

        locations = JobLocations(checked.stage, RUN_ID, f"SPCS_LLM_BATCH_{spec.model_name}_{RUN_ID}")
        plan = BatchPlan(request=request, spec=spec, mode="job", engine=checked.engine, rows=0, tables=tables,
                         model_input=model_input, function_name=spec.route.upper(), target_method=spec.route,
                         params=params, params_sql=(), service_fqn=service_fqn, pool=pool,
                         instance_family="", locations=locations, estimate=None,  # type: ignore[arg-type]
                         model_version=None,
                         adapter_version=Placeholder(f"<{request.adapter} {request.adapter_version} from the "
                                                     "registry>") if request.adapter else None)
        arguments = job_arguments(plan)
        lines += ["-- job path:", locations.create_stage() + ";", locations.stage_input(tables, model_input) + ";",
                  f"model_version = registry.get_model({spec.model_name!r}).version({request.version.upper()!r})",
                  "job = " + call("model_version.run_batch", (), arguments),
                  "-- when the job is DONE (spcs-llm polls it), load its results; rows without one get an ERROR",
                  locations.file_format() + ";", locations.load_results(tables, model_input) + ";",
                  tables.rows_without_result(missing_row_error(arguments["job_name"], "DONE")) + ";"]
    lines += [tables.summary() + ";", f"-- read the answers:\n{answers_query(spec.kind, tables.output_table)}"]
    return "\n".join(lines)


def finetune_preview(names: DeploymentNames, plan: Any, *, external_access: bool, allow_cpu_pool: bool) -> str:
    """``finetune``: the checks, the adapter stage and the ``snowflake.ml.jobs.submit_file`` call."""
    from spcs_llm.deploy.finetune.cost import expected_minutes
    from spcs_llm.deploy.finetune.job import output_stage_sql, submit_arguments

    source = plan.source
    check = (f"DESCRIBE TABLE {source.table};" if source.table else f"LIST {source.stage_file};  -- then GET it and "
             "check every pair here")
    columns = source.columns
    positional, keywords = submit_arguments(plan, names, INPUT_COLUMN if columns.input else None,
                                            external_access=external_access)
    low, high = expected_minutes(plan.spec, plan.settings)
    return "\n".join([
        header(f"finetune {plan.spec.key}"),
        f"-- {plan.spec.key}: {plan.settings.max_steps} steps on {plan.compute_pool}; expected {low}-{high} min "
        "(rough: node start, weight download, steps). The real run prices it from the pool's instance family "
        "(read on the account) and asks before submitting.",
        "-- checks (read-only): the pool is a priced GPU pool"
        + (" (or any pool: --allow-cpu-pool)" if allow_cpu_pool else "") + ", every pair has an instruction and an "
        "output",
        f"SHOW COMPUTE POOLS LIKE '{plan.compute_pool}';",
        check,
        output_stage_sql(plan) + ";",
        "job = " + call("snowflake.ml.jobs.submit_file", positional, {"session": Placeholder("session"), **keywords}),
        f"-- the adapter is saved to {plan.output_location}",
    ])


def cortex_finetune_preview(names: DeploymentNames, request: Any) -> str:
    """``cortex-finetune``: the table checks and the ``FINETUNE('CREATE', ...)`` statement."""
    from spcs_llm.deploy.batch.sql import qualified_table
    from spcs_llm.deploy.cortex_finetune.plan import FinetuneEstimate, FinetunePlan, TableShape, validate

    validate(request)
    training_table = qualified_table(request.training_table, names.database, names.schema, "Training table")
    validation_table = (qualified_table(request.validation_table, names.database, names.schema, "Validation table")
                        if request.validation_table else None)
    columns = tuple(column.upper() for column in request.prompt_columns)  # the run uses the table's own spelling
    completion = request.completion_column.upper()
    training = TableShape(training_table, columns, completion)
    validation = TableShape(validation_table, columns, completion) if validation_table else None
    estimate = FinetuneEstimate(tokens_per_epoch=0, epochs=request.max_epochs,
                                credits_per_million=request.training_credits_per_million,
                                dollars_per_credit=request.dollars_per_credit)
    plan = FinetunePlan(model_fqn=f"{names.database}.{names.schema}.{request.name.upper()}",
                        base_model=request.base_model, training=training, validation=validation,
                        max_epochs=request.max_epochs, estimate=estimate)
    rate = (f"{request.training_credits_per_million:g} credits per million training tokens"
            if request.training_credits_per_million is not None else "the base model's training rate (not given)")
    checks = [f"SHOW COLUMNS IN TABLE {shape.table};" for shape in (training, validation) if shape]
    return "\n".join([
        header(f"cortex-finetune {request.name}"),
        f"-- {plan.base_model} fine-tuned on {training_table} ({ROWS}) → {plan.model_fqn}"
        + (f", validated on {validation_table}" if validation_table else ""),
        f"-- Estimate: made by the real run from the table's characters (read on the account) × epochs × {rate}; "
        "it asks before starting the job.",
        "-- checks (read-only): the columns exist, and the size of the data",
        *checks,
        plan.use_schema_sql() + ";  -- FINETUNE saves the model to the registry of the current schema",
        plan.create_sql() + ";",
        "-- then follow it with SELECT SNOWFLAKE.CORTEX.FINETUNE('DESCRIBE', '<job id: returned by CREATE>');",
    ])


def cortex_job_preview(operation: str, job_id: str) -> str:
    from spcs_llm.deploy.batch.sql import literal

    return "\n".join([header(f"cortex-finetune --{operation.lower()}"),
                      f"SELECT SNOWFLAKE.CORTEX.FINETUNE({literal(operation)}, {literal(job_id)});"])

