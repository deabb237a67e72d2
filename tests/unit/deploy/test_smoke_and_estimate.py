"""The notebook's estimate before deploying, its smoke test after (through the plugin's own adapters), and the
confirmed teardown it can run."""

from __future__ import annotations

import json

import pytest
import responses

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy import CATALOG, DeploymentNames
from spcs_llm.deploy.services.connection import DeployedModel
from spcs_llm.deploy.services.estimate import estimate
from spcs_llm.deploy.services.smoke import smoke_test
from spcs_llm.deploy.services.sql import run_teardown

PAT = "pat-secret-for-the-smoke-test-0123456789"


def _deployed(key: str) -> DeployedModel:
    spec = CATALOG[key]
    return DeployedModel(spec=spec, model_fqn=f"SPCS_LLM.MODELS.{spec.model_name}", version="V1",
                         service_fqn=f"SPCS_LLM.MODELS.{spec.service_name}", status="RUNNING",
                         ingress_host=f"{key}-org-acct.snowflakecomputing.app", instance_family=spec.instance_family,
                         caller_role="SPCS_LLM_USER")


def test_the_estimate_says_where_weights_go_and_what_running_costs():
    phi = estimate(CATALOG["phi-2"], 3.0).text()
    assert "downloaded to THIS machine" in phi and "0.57 credits/h ($1.71/h)" in phi and "$1,248/month" in phi
    zephyr = estimate(CATALOG["zephyr-7b-beta"], 3.0).text()
    assert "downloaded by Snowflake itself" in zephyr and "~14.5 GB" in zephyr
    assert "~46 MB" in estimate(CATALOG["all-minilm-l6-v2"], 3.0).text()


@responses.activate
def test_the_smoke_test_calls_the_chat_service_with_the_printed_settings_and_a_pat():
    def answer(request):
        assert PAT in request.headers["Authorization"]
        row = json.loads(request.body)["data"][0]
        return 200, {}, json.dumps({"data": [[row[0], {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there!"},
                         "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 3,
                                                              "total_tokens": 12}}]]})

    responses.add_callback(responses.POST, "https://zephyr-7b-beta-org-acct.snowflakecomputing.app/__call__",
                           callback=answer)
    result = smoke_test(_deployed("zephyr-7b-beta"), PAT)
    assert result.ok and "Hello there!" in result.text() and "12 tokens" in result.text()


@responses.activate
def test_the_smoke_test_reports_an_embedding_vector_or_the_failure():
    url = "https://all-minilm-l6-v2-org-acct.snowflakecomputing.app/encode"
    responses.add(responses.POST, url, json={"data": [[0, {"output": [0.1] * 384}]]})
    assert smoke_test(_deployed("all-minilm-l6-v2"), PAT).detail == "returned a 384-dimensional vector"
    responses.replace(responses.POST, url, status=403, json={"message": "forbidden"})
    failed = smoke_test(_deployed("all-minilm-l6-v2"), PAT)
    assert not failed.ok and failed.text().startswith("FAILED all-minilm-l6-v2") and PAT not in failed.text()


def test_without_a_pat_the_smoke_test_is_skipped_with_how_to_get_one():
    result = smoke_test(_deployed("zephyr-7b-beta"), None)
    assert not result.ok and "skipped" in result.detail and "PROGRAMMATIC ACCESS TOKEN" in result.detail


def test_the_teardown_runs_only_once_confirmed_with_the_database_name(session):
    names = DeploymentNames()
    with pytest.raises(ConfigurationError, match="not confirmed"):
        run_teardown(session, names, keep_models=False, confirmation="yes")
    assert session.statements == []
    ran = run_teardown(session, names, keep_models=True, confirmation="spcs_llm")
    assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in ran and session.statements == ran
