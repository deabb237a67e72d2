"""Setup, teardown and service-function SQL, rendered from the Jinja templates in ``resource/sql/``.

The SQL lives in templates so that a reviewer reads SQL, not Python string building; every name pasted into
it was validated by ``DeploymentNames`` / ``ModelSpec`` first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jinja2

from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.core.redaction import redact
from spcs_llm.core.resources import resource_path
from spcs_llm.deploy.dependencies import sql_error_type
from spcs_llm.deploy.names import DeploymentNames
from spcs_llm.deploy.services.catalog import CATALOG, ModelSpec

DEFAULT_AUTO_SUSPEND_SECS = 600
REFRESH_TOKEN_VALIDITY_SECS = 7_776_000  # 90 days, the maximum for a custom OAuth client (inferred;
# Snowflake docs "CREATE SECURITY INTEGRATION (Snowflake OAuth)")


@dataclass(frozen=True)
class ServiceFunction:
    """One SQL function bound to a deployed service's endpoint route."""

    model_key: str
    kind: str
    function_name: str
    service_name: str
    route: str
    max_batch_rows: int | None
    usage: str


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_path("sql"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _render(template: str, **context: object) -> str:
    return _environment().get_template(template).render(**context)


def setup_sql(
    names: DeploymentNames,
    *,
    external_access: bool = True,
    auto_suspend_secs: int = DEFAULT_AUTO_SUSPEND_SECS,
    gpu_max_nodes: int = 1,
    cpu_max_nodes: int = 1,
) -> str:
    """Roles, warehouse, schema, pools, BIND SERVICE ENDPOINT, egress, OAuth integration, image repo.

    The steps follow Snowflake's model-serving REST API docs and the sfc-gh-bhess/ex_spcs_token notebook.

    The DSS URL is required (``names.dss_url``): the OAuth redirect is never a placeholder.
    """
    redirect_uri = names.oauth_redirect_uri  # a ConfigurationError naming --dss-url when the URL is missing
    return _render(
        "setup.sql.j2",
        n=names,
        redirect_uri=redirect_uri,
        external_access=external_access,
        auto_suspend_secs=int(auto_suspend_secs),
        gpu_max_nodes=int(gpu_max_nodes),
        cpu_max_nodes=int(cpu_max_nodes),
        refresh_token_validity=REFRESH_TOKEN_VALIDITY_SECS,
        gated_models=[spec.key for spec in CATALOG.values() if spec.gated],
    )


def statements(script: str) -> list[str]:
    """Split a rendered script into statements (the templates keep ';' only at line ends)."""
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in body.split(";") if part.strip()]


def run_teardown(session: Any, names: DeploymentNames, *, keep_models: bool, confirmation: str) -> list[str]:
    """Run the teardown script once ``confirmation`` is the database name; returns the statements it ran."""
    if confirmation.strip().upper() != names.database:
        raise ConfigurationError(
            f"Teardown not confirmed (expected the database name {names.database}); nothing was dropped.",
            fix=f"Type {names.database} as the confirmation to drop what the script lists.",
        )
    script = statements(teardown_sql(names, keep_models=keep_models))
    sql_error = sql_error_type(purpose="Tearing down")
    for done, statement in enumerate(script):
        try:
            session.sql(statement).collect()
        except sql_error as exc:
            raise TeardownIncompleteError(script[:done], statement, script[done + 1:], redact(str(exc))) from None
    return script


class TeardownIncompleteError(DeploymentError):
    """A teardown statement failed: what already ran, the failing statement and what did not run, so nobody has to
    guess what is still billing."""

    def __init__(self, ran: list[str], failed: str, not_run: list[str], cause: str) -> None:
        self.ran, self.failed, self.not_run = ran, failed, not_run
        super().__init__(
            f"Teardown stopped: {failed} failed ({cause.strip()}). {len(ran)} statement(s) ran before it; "
            f"{len(not_run)} did not run.",
            fix="Fix the cause (teardown runs as ACCOUNTADMIN: the user needs that role), then run the teardown "
                "again: every statement uses IF EXISTS, so what is already dropped is skipped.")


def teardown_sql(names: DeploymentNames, *, keep_models: bool = False) -> str:
    """Stop services, drop pools and warehouse (all compute billing); unless ``keep_models``, drop the rest too."""
    return _render("teardown.sql.j2", n=names, keep_models=keep_models)


def service_function_for(spec: ModelSpec) -> ServiceFunction:
    if spec.kind == "chat":
        usage = (
            f"SELECT {spec.model_name}_CHAT(OBJECT_CONSTRUCT('messages', "
            "ARRAY_CONSTRUCT(OBJECT_CONSTRUCT('role', 'user', 'content', 'Hello'))));"
        )
    else:
        usage = (
            f"SELECT {spec.model_name}_EMBED(OBJECT_CONSTRUCT('<input column>', text)) FROM t;  "
            "-- input column name: SHOW FUNCTIONS IN MODEL"
        )
    return ServiceFunction(
        model_key=spec.key,
        kind=spec.kind,
        function_name=f"{spec.model_name}_{'CHAT' if spec.kind == 'chat' else 'EMBED'}",
        service_name=spec.service_name,
        route=spec.route,
        max_batch_rows=spec.max_batch_rows,
        usage=usage,
    )


def service_functions_sql(names: DeploymentNames, specs: Iterable[ModelSpec] | None = None) -> str:
    """``CREATE FUNCTION … SERVICE=… ENDPOINT=inference AS '/<route>'`` for each model, granted to the user role."""
    chosen = list(specs) if specs is not None else list(CATALOG.values())
    return _render("service_functions.sql.j2", n=names, functions=[service_function_for(s) for s in chosen])

