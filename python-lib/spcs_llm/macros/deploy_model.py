"""Macro *Deploy a model to SPCS* (DSS admins only): a catalog model or a Hugging Face id, served on a pool.

Without "I accept the cost shown" ticked it shows the estimate and the dry-run plan and submits nothing (no
Snowflake session is opened); ticked, it deploys with the deployer the CLI uses, waits until the service runs,
and ends with the settings to enter in DSS — or, when asked, adds the model to a Custom LLM connection itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.names import DeploymentNames
from spcs_llm.deploy.services.catalog import CATALOG, ModelKind, ModelSpec, resolve_model
from spcs_llm.deploy.services.connection import DeployedModel, connection_block, connection_settings
from spcs_llm.deploy.services.deployer import DeployOptions
from spcs_llm.deploy.services.engine import ENGINES, EngineName, EngineOptions
from spcs_llm.deploy.services.estimate import estimate
from spcs_llm.deploy.services.lifecycle import Clock, Sleep, WaitSettings
from spcs_llm.dss.labels import CHAT_COMPONENT, EMBEDDING_COMPONENT
from spcs_llm.macros.llm_connection import add_model, api_client
from spcs_llm.macros.page import Page, Params, Progress, run_page

OTHER_MODEL = "other"  # the SELECT choice that reads the Hugging Face id field
NAME_PARAMS = ("database", "schema", "gpu_pool", "cpu_pool", "user_role")
PARAMS = frozenset({
    "connection", "model", "hf_id", "kind", "instance_family", "min_instances", "max_instances", "engine",
    *NAME_PARAMS, "dollars_per_credit", "timeout_minutes", "accept_cost", "add_to_connection", "llm_connection",
})
WAIT_STEPS = 100  # the progress bar: 0-100 while waiting for RUNNING, as a share of the timeout
POLL_SECONDS = 15.0


@dataclass(frozen=True)
class DeployRequest:
    """Everything the form says, checked before any connection."""

    spec: ModelSpec
    names: DeploymentNames
    options: DeployOptions
    dollars_per_credit: float


def read_request(params: Params) -> DeployRequest:
    choice = params.text("model")
    name = params.text("hf_id") if choice == OTHER_MODEL else choice
    if not name:
        raise ConfigurationError("No model chosen.", fix=f"Pick a catalog model, or '{OTHER_MODEL}' and a Hugging "
                                                         "Face id such as org/model.")
    kind_text = params.text("kind", "auto") if choice == OTHER_MODEL else "auto"  # hidden (and ignored) otherwise
    kind: ModelKind | None = "chat" if kind_text == "chat" else "embedding" if kind_text == "embedding" else None
    engine_text = params.text("engine", "auto")
    engine: EngineName | None = next((name for name in ENGINES if name == engine_text), None)
    if engine is None and engine_text != "auto":
        raise ConfigurationError(f"Unknown inference engine {engine_text!r}.", fix="Pick auto, vllm or python.")
    minimum = params.integer("min_instances", -1, minimum=-1)
    maximum = params.integer("max_instances", -1, minimum=-1)
    spec = resolve_model(
        name, kind=kind, instance_family=params.text("instance_family") or None,
        min_instances=None if minimum < 0 else minimum, max_instances=None if maximum < 0 else maximum,
        engine=EngineOptions(engine=engine),
    )
    timeout = params.number("timeout_minutes", 60.0, minimum=1.0) * 60
    return DeployRequest(
        spec=spec,
        names=params.names(*NAME_PARAMS),
        options=DeployOptions(wait=WaitSettings(timeout_s=timeout, poll_interval_s=POLL_SECONDS)),
        dollars_per_credit=params.number("dollars_per_credit", 3.0, minimum=0.0),
    )


class DeployModelMacro:
    progress_target = (WAIT_STEPS, "NONE")

    def __init__(self, config: dict, *, sleep: Sleep | None = None, clock: Clock | None = None,
                 client_factory: Callable[[], Any] | None = None) -> None:
        self.params = Params(config, PARAMS)
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self._client_factory = client_factory or api_client

    def run(self, progress: Progress) -> str:
        return run_page("Deploy a model to SPCS", lambda page: self._deploy(page, progress))

    def _deploy(self, page: Page, progress: Progress) -> None:
        from spcs_llm.deploy.preview import deploy_preview

        request = read_request(self.params)
        spec = request.spec
        page.heading("Cost estimate")
        page.paragraph(estimate(spec, request.dollars_per_credit).text())
        if spec.notes:
            page.paragraph(spec.notes)
        if not self.params.flag("accept_cost"):
            page.notice("Nothing was submitted: tick 'I accept the cost shown' and run the macro again to deploy. "
                        "The plan below is what would run.")
            page.heading("Plan (dry run)")
            page.pre(deploy_preview(spec, request.names, request.options,
                                    dollars_per_credit=request.dollars_per_credit, command=f"deploy {spec.key}"))
            progress(WAIT_STEPS)
            return
        deployed = self._run_deployment(request, progress)
        page.heading("Deployed")
        page.paragraph(f"{deployed.service_fqn} is {deployed.status}"
                       + (" (kept: it was already running)." if deployed.service_reused else "."))
        page.heading("Settings to enter in DSS")
        page.pre(connection_block(deployed, dollars_per_credit=request.dollars_per_credit))
        if self.params.flag("add_to_connection"):
            self._add_to_connection(page, deployed, request.dollars_per_credit)
        progress(WAIT_STEPS)

    def _run_deployment(self, request: DeployRequest, progress: Progress) -> DeployedModel:
        """The CLI's deployer; its waiting loop's sleeps move the progress bar (a share of the timeout)."""
        from spcs_llm.deploy.services.deployer import Deployer

        started = self._clock()
        timeout = request.options.wait.timeout_s

        def sleep(seconds: float) -> None:
            self._sleep(seconds)
            progress(max(1, min(WAIT_STEPS - 1, int((self._clock() - started) / timeout * WAIT_STEPS))))

        session = self.params.session()
        progress(1)
        deployer = Deployer(session, request.names, sleep=sleep, clock=self._clock)
        return deployer.deploy(request.spec, request.options)

    def _add_to_connection(self, page: Page, deployed: DeployedModel, dollars_per_credit: float) -> None:
        name = self.params.text("llm_connection")
        if not name:
            raise ConfigurationError("'Add it to a Custom LLM connection' is ticked but no connection is named.",
                                     fix="Enter the name of the spcs-llm Custom LLM connection, or untick the box.")
        component = CHAT_COMPONENT if deployed.spec.kind == "chat" else EMBEDDING_COMPONENT
        settings = connection_settings(deployed, dollars_per_credit=dollars_per_credit)
        added = add_model(self._client_factory(), name, component, deployed.spec.service_name.lower(),
                          settings)
        page.paragraph(f"{'Updated' if added.replaced else 'Added'} model {added.model_id} in the connection "
                       f"{added.connection} (copied from its first {component} model: same authentication and "
                       "preset). Open it there to check.")


def catalog_choices() -> list[dict[str, str]]:
    """The SELECT choices of runnable.json's 'model' parameter: the catalog, then 'other' (tested against it)."""
    return [{"value": key, "label": f"{key} ({spec.kind})"} for key, spec in CATALOG.items()] + \
        [{"value": OTHER_MODEL, "label": "Another Hugging Face model (enter its id)"}]
