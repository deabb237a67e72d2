"""A recording fake of a Snowpark session, answering the SQL snowflake-ml-python 2.6 issues from a scripted account.

The real ``Registry`` / ``log_model`` / ``create_service`` / ``list_services`` / ``delete_service`` code runs
unchanged down to ``session.sql(...).collect()``; this class answers those statements from ``FakeAccount``
state and records every statement for assertions. Unknown statements raise, so a new call in a future
snowflake-ml version shows up as a test failure rather than a silent pass.

Two things are not SQL and are faked at their own seams (see conftest.py): the client-side PUT of model files
(``snowflake.snowpark.FileOperation.put``) and the Hugging Face Hub download (``huggingface_hub.snapshot_download``).
The session's own ``file`` (GET of a stage folder, ``FakeFileOperation``) and ``lineage`` (``Lineage.trace``
builds a data frame from graph-query answers; ``FakeLineage`` answers from the account's adapter pins) are faked
here.
"""

from __future__ import annotations

import json
import re
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml
from fake_snowflake_seams import (
    FakeAsyncJob,
    FakeFileOperation,
    FakeLineage,
    _last,
    _not_found,
    _unquote,
    imported_model_spec,
)
from snowflake.snowpark import Row
from snowflake.snowpark.exceptions import SnowparkSQLException

# The deploy spec travels inline in the CALL.
CAPABILITIES = {"ENABLE_INLINE_DEPLOYMENT_SPEC_FROM_CLIENT_VERSION": "1.0.0"}
LORA_FLAG = "ENABLE_LORA_ADAPTERS"  # snowflake-ml _internal/platform_capabilities.py; off unless the account has it


@dataclass
class FakeService:
    name: str
    model: str
    version: str
    compute_pool: str
    statuses: list[str]  # consumed one per status query; the last one sticks
    ingress_host: str
    logs: str = "model server started\nlistening on 5000"
    spec: dict[str, Any] = field(default_factory=dict)
    polls: int = 0

    @property
    def status(self) -> str:
        return self.statuses[min(max(self.polls - 1, 0), len(self.statuses) - 1)]

    def advance(self) -> str:
        """One status query: the next scripted status (the last one sticks); SHOW ENDPOINTS agrees with it."""
        self.polls += 1
        return self.status


@dataclass
class FakeAccount:
    """What exists in the fake Snowflake account, and how the next deployment behaves."""

    database: str = "SPCS_LLM"
    schema: str = "MODELS"
    compute_pools: dict[str, str] = field(
        default_factory=lambda: {"SPCS_LLM_GPU_POOL": "GPU_NV_S", "SPCS_LLM_CPU_POOL": "CPU_X64_S"}
    )
    pool_columns: dict[str, dict[str, Any]] = field(default_factory=dict)  # pool -> SHOW COMPUTE POOLS overrides
    usage_history: dict[str, tuple[float, int]] | None = None  # pool -> (credits, billed hours); None: not authorized
    daily_history: list[tuple[str, date, float]] = field(default_factory=list)  # (pool, day, credits), same privilege
    models: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # model -> version -> service names
    services: dict[str, FakeService] = field(default_factory=dict)
    next_statuses: list[str] = field(default_factory=lambda: ["PENDING", "PENDING", "RUNNING"])
    next_logs: str = "model server started\nlistening on 5000"
    deploy_error: str | None = None
    refuse_grants: bool = False
    grants: list[str] = field(default_factory=list)
    deploy_specs: list[dict[str, Any]] = field(default_factory=list)
    import_specs: list[dict[str, Any]] = field(default_factory=list)
    uploaded: dict[str, bytes] = field(default_factory=dict)  # stage path -> content (PUTs; what GET reads)
    model_specs: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, version) -> model.yaml text
    lora_adapters_enabled: bool = False  # SYSTEM$ML_PLATFORM_CAPABILITIES lists ENABLE_LORA_ADAPTERS when True
    pins: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # adapter version -> base version

    def capabilities(self) -> dict[str, Any]:
        return {**CAPABILITIES, LORA_FLAG: True} if self.lora_adapters_enabled else dict(CAPABILITIES)

    def add_version(self, model: str, version: str) -> None:
        """Register a version; until something better is known its spec is a chat model's (see CREATE MODEL)."""
        self.models.setdefault(model, {}).setdefault(version, [])
        self.model_specs.setdefault(
            (model, version), imported_model_spec(model, {"hf_model_name": model, "task": "text-generation"}))

    def add_service(self, model: str, version: str, name: str, statuses: list[str],
                    pool: str = "SPCS_LLM_GPU_POOL") -> FakeService:
        self.add_version(model, version)
        service = FakeService(name, model, version, pool, list(statuses),
                              f"{name.lower()}-org-acct.snowflakecomputing.app")
        self.services[name] = service
        self.models[model][version].append(name)
        return service


class _FakeDataFrame:
    def __init__(self, session: RecordingSession, query: str, params: Any) -> None:
        self._session, self._query, self._params = session, query, params

    def collect(self, *, statement_params: Any = None, block: bool = True, **_: Any) -> Any:
        if block:
            return self._session.execute(self._query, self._params)
        try:
            return FakeAsyncJob(self._session.execute(self._query, self._params))
        except SnowparkSQLException as exc:
            if self._session.account.deploy_error is None:
                raise
            return FakeAsyncJob([], exc)


Handlers = list[tuple[str, Callable[[re.Match], list[Row]]]]
# Other fake modules (fake_jobs.py, fake_batch.py) append a function here that returns the (pattern, answer) pairs
# for the statements of their snowflake-ml area; every new session gets them after the registry's own.
HANDLER_EXTENSIONS: list[Callable[[RecordingSession], Handlers]] = []


class RecordingSession:
    """The Snowpark ``Session`` surface that snowflake-ml 2.6 and spcs_llm.deploy use."""

    def __init__(self, account: FakeAccount | None = None, role: str = "SPCS_LLM_DEPLOYER") -> None:
        self.account = account or FakeAccount()
        self.statements: list[str] = []
        self.role = role
        self._options = {"paramstyle": "pyformat"}
        self.connection = types.SimpleNamespace(host="org-acct.snowflakecomputing.com", scheme="https")
        self._lock = threading.Lock()
        self.lineage = FakeLineage(self)
        self.file = FakeFileOperation(self)
        self._handlers = [
            (r"^SHOW DATABASES LIKE '(\w+)'", self._show_databases),
            (r"^SHOW SCHEMAS LIKE '(\w+)'", self._show_schemas),
            (r"SYSTEM\$ML_PLATFORM_CAPABILITIES", lambda m: [Row(FEATURES=json.dumps(self.account.capabilities()))]),
            (r"^SHOW MODELS LIKE '(\w+)'", self._show_models),
            (r"^SHOW VERSIONS (?:LIKE '(\w+)' )?IN MODEL ([\w.\"]+)", self._show_versions),
            (r"^SELECT SYSTEM\$IMPORT_MODEL\('(.*)'\)$", self._import_model),
            (r"^CREATE SCOPED TEMPORARY STAGE", lambda m: [Row(status="Stage area successfully created.")]),
            (r"^CREATE MODEL ([\w.\"]+) WITH VERSION (\w+) FROM", self._create_model),
            (r"^ALTER MODEL ([\w.\"]+) ADD VERSION (\w+) FROM", self._create_model),
            (r"^ALTER MODEL ([\w.\"]+) DROP VERSION (\w+)", self._drop_version),
            (r"^ALTER MODEL .* (SET|MODIFY) ", lambda m: [Row(status="Statement executed successfully.")]),
            (r"^SHOW FUNCTIONS IN MODEL ([\w.\"]+) VERSION (\w+)", self._show_functions),
            (r"^SHOW COMPUTE POOLS LIKE '(\w+)'", self._show_pools),
            (r"^SELECT TO_DATE\(START_TIME\) AS DAY, SUM\(CREDITS_USED\) AS CREDITS FROM "
             r"SNOWFLAKE\.ACCOUNT_USAGE\.SNOWPARK_CONTAINER_SERVICES_HISTORY .* IN \(([^)]*)\)", self._daily_usage),
            (r"FROM SNOWFLAKE\.ACCOUNT_USAGE\.SNOWPARK_CONTAINER_SERVICES_HISTORY .* IN \(([^)]*)\)", self._pool_usage),
            (r"^SHOW SERVICES (?:LIKE '(\w+)' )?IN SCHEMA ([\w.\"]+)(?: STARTS WITH '(\w+)')?", self._show_services),
            (r"^CALL SYSTEM\$DEPLOY_MODEL\('(.*)'\)$", self._deploy_model),
            (r"^SHOW SERVICE CONTAINERS IN SERVICE ([\w.\"]+)", self._show_containers),
            (r"^DESCRIBE SERVICE ([\w.\"]+)", self._describe_service),
            (r"^SHOW ENDPOINTS IN SERVICE ([\w.\"]+)", self._show_endpoints),
            (r"^CALL SYSTEM\$GET_SERVICE_LOGS\('([\w.\"]+)', '(\d+)', '([\w-]+)'", self._service_logs),
            (r"^DROP SERVICE (?:IF EXISTS )?([\w.\"]+)", self._drop_service),
            (r"^(USE|ALTER COMPUTE POOL|DROP COMPUTE POOL|ALTER WAREHOUSE|DROP WAREHOUSE|DROP DATABASE|DROP INTEGRATION"
             r"|DROP ROLE) ", lambda m: [Row(status="Statement executed successfully.")]),
            (r"^GRANT SERVICE ROLE ([\w.\"]+)!ALL_ENDPOINTS_USAGE TO ROLE (\w+)", self._grant),
        ]
        for extend in HANDLER_EXTENSIONS:
            self._handlers.extend(extend(self))

    # --- the Session surface -----------------------------------------------------------------------------------
    def sql(self, query: str, params: Any = None) -> _FakeDataFrame:
        return _FakeDataFrame(self, query, params)

    def get_current_database(self) -> str:
        return f'"{self.account.database}"'

    def get_current_schema(self) -> str:
        return f'"{self.account.schema}"'

    def get_current_role(self) -> str:
        return f'"{self.role}"'

    def execute(self, query: str, params: Any) -> list[Row]:
        text = " ".join(query.split()) if "SYSTEM$" not in query else query.strip()
        with self._lock:
            self.statements.append(text)
            for pattern, handler in self._handlers:
                match = re.search(pattern, text, re.DOTALL | re.IGNORECASE)
                if match:
                    return handler(match)
        raise AssertionError(f"The fake Snowflake session has no answer for: {text[:300]}")

    def statements_like(self, prefix: str) -> list[str]:
        return [s for s in self.statements if s.upper().startswith(prefix.upper())]

    # --- answers -----------------------------------------------------------------------------------------------
    def _show_databases(self, m: re.Match) -> list[Row]:
        return [Row(name=self.account.database)] if _unquote(m[1]) == self.account.database else []

    def _show_schemas(self, m: re.Match) -> list[Row]:
        return [Row(name=self.account.schema)] if _unquote(m[1]) == self.account.schema else []

    def _show_models(self, m: re.Match) -> list[Row]:
        name = _unquote(m[1])
        if name not in self.account.models:
            return []
        return [Row(name=name, database_name=self.account.database, schema_name=self.account.schema,
                    versions=json.dumps(list(self.account.models[name])), default_version_name="V1", comment=None)]

    def _version_row(self, model: str, version: str) -> Row:
        services = [f"{self.account.database}.{self.account.schema}.{s}" for s in self.account.models[model][version]]
        return Row(name=version, aliases="[]", comment=None, database_name=self.account.database,
                   schema_name=self.account.schema, model_name=model, is_default_version="true",
                   inference_services=json.dumps(services), model_spec=self.account.model_specs.get((model, version)),
                   runnable_in=json.dumps(["SNOWPARK_CONTAINER_SERVICES"]), metadata="{}")

    def _show_versions(self, m: re.Match) -> list[Row]:
        model = _last(m[2])
        versions = self.account.models.get(model, {})
        wanted = [_unquote(m[1])] if m[1] else list(versions)
        return [self._version_row(model, v) for v in wanted if v in versions]

    def _import_model(self, m: re.Match) -> list[Row]:
        spec = yaml.safe_load(m[1].replace("\\'", "'"))
        self.account.import_specs.append(spec)
        for entry in spec["models"]:
            model, version = _last(entry["name"]["model_name"]), _unquote(entry["name"]["version_name"])
            self.account.model_specs[(model, version)] = imported_model_spec(model, entry["hf_model"])
            self.account.add_version(model, version)
        return [Row(**{"SYSTEM$IMPORT_MODEL": "Model imported."})]

    def _create_model(self, m: re.Match) -> list[Row]:
        stage = re.search(r"FROM @([\w.\"]+)/(\w+)", m.string)
        manifest = self.account.uploaded.get(f"@{stage[1]}/{stage[2]}/model/model.yaml") if stage else None
        key = (_last(m[1]), _unquote(m[2]))
        if manifest:
            pin = self._adapter_pin(yaml.safe_load(manifest))
            if pin is not None:
                self.account.pins[key] = pin
            self.account.model_specs[key] = manifest.decode("utf-8")
        self.account.add_version(*key)
        return [Row(status="Model created.")]

    def _adapter_pin(self, spec: dict[str, Any]) -> tuple[str, str] | None:
        """The base version a PEFT adapter manifest names (blob options ``base_model_name`` / ``base_model_version``,
        snowflake-ml ``_packager/model_handlers/peft_adapter.py`` save_model). Stricter than known: the account
        refuses an adapter while LoRA is off, and one whose base version does not exist."""
        blob = next((b for b in spec.get("models", {}).values() if b.get("model_type") == "peft_adapter"), None)
        if blob is None:
            return None
        if not self.account.lora_adapters_enabled:
            raise SnowparkSQLException(f"LoRA adapters are not enabled for this account ({LORA_FLAG}).")
        base, version = _last(blob["options"]["base_model_name"]), _unquote(blob["options"]["base_model_version"])
        if version not in self.account.models.get(base, {}):
            raise _not_found(f"Model '{base}' version '{version}'")
        return base, version

    def _drop_version(self, m: re.Match) -> list[Row]:
        model = _last(m[1])
        self.account.models[model].pop(_unquote(m[2]))
        self.account.model_specs.pop((model, _unquote(m[2])), None)
        self.account.pins.pop((model, _unquote(m[2])), None)
        return [Row(status="Statement executed successfully.")]

    def _show_functions(self, m: re.Match) -> list[Row]:
        """One SQL function per method of the version's model spec, named as Snowflake upper-cases it.

        An adapter version has the functions of its base version: its manifest carries no signatures ("signatures
        are copied at commit from the pin", snowflake-ml peft_adapter.py), and ``model_ops.get_functions`` then
        resolves them through the pin. inferred: the server lists the pin's methods for the adapter version.
        """
        key = (_last(m[1]), _unquote(m[2]))
        spec = yaml.safe_load(self.account.model_specs[self.account.pins.get(key, key)])
        return [Row(name=method.upper(), return_type="OBJECT", arguments="(...)") for method in spec["signatures"]]

    def _show_pools(self, m: re.Match) -> list[Row]:
        name = _unquote(m[1])
        family = self.account.compute_pools.get(name)
        if not family:
            return []
        columns = {"name": name, "state": "SUSPENDED", "min_nodes": 1, "instance_family": family, "active_nodes": 0,
                   "idle_nodes": 0, **self.account.pool_columns.get(name, {})}
        return [Row(**columns)]

    def _pool_usage(self, m: re.Match) -> list[Row]:
        """Metering rows for the asked pools; an account without the privilege refuses like Snowflake does."""
        if self.account.usage_history is None:
            raise SnowparkSQLException("002003 (02000): SQL compilation error: Schema 'SNOWFLAKE.ACCOUNT_USAGE' does "
                                       "not exist or not authorized.")
        asked = {name.strip().strip("'").upper() for name in m[1].split(",")}
        return [Row(COMPUTE_POOL_NAME=pool, CREDITS=credits, BILLED_HOURS=hours)
                for pool, (credits, hours) in sorted(self.account.usage_history.items()) if pool in asked]

    def _daily_usage(self, m: re.Match) -> list[Row]:
        """Credits per day of the asked pools (days without usage have no row, as with GROUP BY)."""
        if self.account.usage_history is None:
            return self._pool_usage(m)  # refused the same way
        asked = {name.strip().strip("'").upper() for name in m[1].split(",")}
        per_day: dict[date, float] = {}
        for pool, day, credits in self.account.daily_history:
            if pool in asked:
                per_day[day] = per_day.get(day, 0.0) + credits
        return [Row(DAY=day, CREDITS=credits) for day, credits in sorted(per_day.items())]

    def _show_services(self, m: re.Match) -> list[Row]:
        prefix = _unquote(m[1] or m[3] or "")
        return [Row(name=s.name, status=s.status, compute_pool=s.compute_pool, database_name=self.account.database,
                    schema_name=self.account.schema)
                for s in self.account.services.values() if s.name.startswith(prefix)]

    def _deploy_model(self, m: re.Match) -> list[Row]:
        spec = yaml.safe_load(m[1].replace("\\'", "'"))
        self.account.deploy_specs.append(spec)
        if self.account.deploy_error:
            raise SnowparkSQLException(self.account.deploy_error)
        service = spec["service"]
        pool = _unquote(service["compute_pool"])
        if pool not in self.account.compute_pools:
            raise _not_found(f"Compute pool '{pool}'")
        model = spec["models"][0]
        self._check_adapters(spec["service"].get("adapters") or [], (_last(model["name"]), _unquote(model["version"])))
        created = self.account.add_service(
            _last(model["name"]), _unquote(model["version"]), _last(service["name"]), self.account.next_statuses, pool
        )
        created.logs = self.account.next_logs
        created.spec = spec
        return [Row(**{"SYSTEM$DEPLOY_MODEL": f"Service {created.name} deployed."})]

    def _check_adapters(self, adapters: list[dict[str, Any]], base: tuple[str, str]) -> None:
        """Stricter than known: every adapter of a deploy spec exists and is pinned to the version being served
        (snowflake-ml model_version_impl.py create_service serializes them as name/version/alias)."""
        if adapters and not self.account.lora_adapters_enabled:
            raise SnowparkSQLException(f"LoRA adapters are not enabled for this account ({LORA_FLAG}).")
        for adapter in adapters:
            key = (_last(adapter["name"]), _unquote(adapter["version"]))
            if key not in self.account.pins:
                raise _not_found(f"Adapter model '{key[0]}' version '{key[1]}'")
            if self.account.pins[key] != base:
                raise SnowparkSQLException(
                    f"Adapter {key[0]} {key[1]} is pinned to {self.account.pins[key]}, not {base}.")

    def _service(self, fqn: str) -> FakeService:
        service = self.account.services.get(_last(fqn))
        if service is None:
            raise _not_found(f"Service '{_last(fqn)}'")
        return service

    def _show_containers(self, m: re.Match) -> list[Row]:
        service = self._service(m[1])
        status = service.advance()
        ready = status == "RUNNING"
        return [Row(database_name=self.account.database, schema_name=self.account.schema, service_name=service.name,
                    service_status=status, instance_id="0" if ready else None,
                    instance_status="READY" if ready else None, container_name="model-inference",
                    status="READY" if ready else "PENDING", message="Running" if ready else "Pending scheduling")]

    def _describe_service(self, m: re.Match) -> list[Row]:
        service = self._service(m[1])
        return [Row(name=service.name, status=service.status, dns_name=f"{service.name.lower()}.svc.spcs.internal",
                    spec=None)]

    def _show_endpoints(self, m: re.Match) -> list[Row]:
        service = self._service(m[1])
        host = service.ingress_host if service.status == "RUNNING" else "Endpoints provisioning in progress..."
        return [Row(name="inference", port=5000, protocol="HTTP", is_public="true", ingress_url=host,
                    privatelink_ingress_url=None)]

    def _service_logs(self, m: re.Match) -> list[Row]:
        return [Row(**{"SYSTEM$GET_SERVICE_LOGS": self._service(m[1]).logs})]

    def _drop_service(self, m: re.Match) -> list[Row]:
        name = _last(m[1])
        service = self.account.services.pop(name, None)
        if service is not None:
            self.account.models[service.model][service.version].remove(name)
        return [Row(status=f"{name} successfully dropped.")]

    def _grant(self, m: re.Match) -> list[Row]:
        if self.account.refuse_grants:
            raise SnowparkSQLException(
                "003001 (42501): SQL access control error: Insufficient privileges to operate on service.")
        self.account.grants.append(f"{_last(m[1])}->{_unquote(m[2])}")
        return [Row(status="Statement executed successfully.")]


ACTIVE: list[RecordingSession] = []  # set by tests that drive the CLI in-process


def session_from_environment() -> RecordingSession:
    """Factory for ``SPCS_LLM_SESSION_FACTORY``: the test's session if one is active, else a fresh fake account
    whose services come up at once (the notebook run, in its own kernel process)."""
    return ACTIVE[-1] if ACTIVE else RecordingSession(FakeAccount(next_statuses=["RUNNING"]))
