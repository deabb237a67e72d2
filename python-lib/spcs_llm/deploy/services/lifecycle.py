"""Inference services: look them up, wait for RUNNING with a progress bar, show logs when they fail, grant access.

Status and ingress host come from ``ModelVersion.list_services()`` (snowflake-ml ``model_ops.py`` ``show_services``);
logs and grants are plain SQL (``SYSTEM$GET_SERVICE_LOGS`` as snowflake-ml ``service_ops.py`` calls it,
``GRANT SERVICE ROLE``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import DeploymentError, DeploymentTimeoutError, ServiceFailedError
from spcs_llm.core.redaction import get_logger
from spcs_llm.deploy.dependencies import require

log = get_logger(__name__)

LIVE_STATES = ("RUNNING", "PENDING", "SUSPENDING", "SUSPENDED")
FAILED_STATES = ("FAILED", "INTERNAL_ERROR")
INFERENCE_CONTAINER = "model-inference"  # snowflake-ml _client/ops/deployment_step.py


@dataclass(frozen=True)
class ServiceState:
    name: str
    status: str
    ingress_host: str | None


@dataclass(frozen=True)
class WaitSettings:
    timeout_s: float = 3600.0
    poll_interval_s: float = 15.0
    log_lines: int = 100


Sleep = Callable[[float], None]
Clock = Callable[[], float]


def services_of(model_version: Any) -> dict[str, ServiceState]:
    """The version's services by fully qualified name."""
    frame = model_version.list_services()
    if frame.empty:
        return {}
    return {
        str(row["name"]): ServiceState(str(row["name"]), str(row["status"]), row.get("inference_endpoint") or None)
        for row in frame.to_dict("records")
    }


def service_exists_in_schema(session: Any, schema_fqn: str, service_name: str) -> bool:
    rows = session.sql(f"SHOW SERVICES LIKE '{service_name}' IN SCHEMA {schema_fqn}").collect()
    return any(str(row["name"]).upper() == service_name.upper() for row in rows)


def service_logs(session: Any, service_fqn: str, lines: int) -> str:
    """The tail of the inference container's log, or a note saying why there is none."""
    try:
        rows = session.sql(
            f"CALL SYSTEM$GET_SERVICE_LOGS('{service_fqn}', '0', '{INFERENCE_CONTAINER}', {int(lines)})"
        ).collect()
    except Exception as exc:  # noqa: BLE001 - logs are best effort; the failure itself is reported by the caller
        return f"(no logs: {exc})"
    return str(rows[0][0]) if rows else "(no logs)"


def _progress(total_s: float, description: str) -> Any:
    return require("tqdm.auto").tqdm(total=int(total_s), desc=description, unit="s",
                                     bar_format="{desc}: {elapsed} {postfix}")


def wait_until_running(
    session: Any,
    model_version: Any,
    service_fqn: str,
    deploy_job: Any | None,
    settings: WaitSettings,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> ServiceState:
    """Poll until the service is RUNNING with an ingress host; FAILED → logs; the deploy job failing → its error."""
    started = clock()
    last_status = "SUBMITTED"
    with _progress(settings.timeout_s, f"Waiting for {service_fqn}") as bar:
        while True:
            state = services_of(model_version).get(service_fqn)
            if state is not None:
                last_status = state.status
                if state.status in FAILED_STATES:
                    raise ServiceFailedError(
                        f"Service {service_fqn} is {state.status}.",
                        logs=service_logs(session, service_fqn, settings.log_lines),
                    )
                if state.status == "RUNNING" and state.ingress_host:
                    bar.set_postfix_str("RUNNING")
                    return state
            if deploy_job is not None and deploy_job.is_done():
                _raise_if_job_failed(session, deploy_job, service_fqn, settings)
            elapsed = clock() - started
            if elapsed > settings.timeout_s:
                raise DeploymentTimeoutError(
                    f"Service {service_fqn} is still {last_status} after {int(elapsed)} s."
                )
            bar.set_postfix_str(last_status if state is None or state.ingress_host or last_status != "RUNNING"
                                else "RUNNING, waiting for the ingress URL")
            bar.update(int(settings.poll_interval_s))
            sleep(settings.poll_interval_s)


def _raise_if_job_failed(session: Any, deploy_job: Any, service_fqn: str, settings: WaitSettings) -> None:
    try:
        deploy_job.result()
    except Exception as exc:  # noqa: BLE001 - any deploy-job failure is reported with its message and logs
        message = str(exc)
        upper = message.upper()
        fix = None
        if "BIND SERVICE ENDPOINT" in upper:
            fix = "As ACCOUNTADMIN: GRANT BIND SERVICE ENDPOINT ON ACCOUNT TO ROLE <deployer role>; then re-run."
        elif "COMPUTE POOL" in upper and ("NOT EXIST" in upper or "NOT AUTHORIZED" in upper):
            fix = ("Create the pool with `spcs-llm setup-sql`, or GRANT USAGE, MONITOR ON COMPUTE POOL <pool> TO ROLE "
                   "<deployer role>.")
        raise ServiceFailedError(
            f"Deploying {service_fqn} failed: {message}",
            logs=service_logs(session, service_fqn, settings.log_lines),
            fix=fix,
        ) from None


def grant_service_role(session: Any, service_fqn: str, role: str) -> None:
    statement = f"GRANT SERVICE ROLE {service_fqn}!ALL_ENDPOINTS_USAGE TO ROLE {role}"
    try:
        session.sql(statement).collect()
    except Exception as exc:  # noqa: BLE001 - surfaced with the exact statement to run
        raise DeploymentError(
            f"The service is running but role {role} could not be granted access: {exc}",
            fix=f"As the service owner (or ACCOUNTADMIN) run: {statement};",
        ) from None


def describe_pool(session: Any, pool: str) -> dict[str, Any]:
    """The SHOW COMPUTE POOLS row of ``pool``; a missing pool is a DeploymentError that names the fix."""
    rows = session.sql(f"SHOW COMPUTE POOLS LIKE '{pool}'").collect()
    for row in rows:
        if str(row["name"]).upper() == pool.upper():
            return row.as_dict()
    raise DeploymentError(
        f"Compute pool {pool} does not exist, or the current role cannot see it.",
        fix=f"Run the SQL from `spcs-llm setup-sql` as ACCOUNTADMIN (it creates {pool}), or pass --gpu-pool/--cpu-pool "
        f"with an existing pool and GRANT USAGE, MONITOR ON COMPUTE POOL <pool> TO ROLE <deployer role>.",
    )
