"""Setup / teardown / service-function SQL rendered from resource/sql/ templates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from error_checks import assert_fix
from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy import CATALOG, DeploymentNames, service_functions_sql, setup_sql, teardown_sql

GOLDEN = Path(__file__).parent / "golden" / "setup_default.sql"
NAMES = DeploymentNames.build(dss_url="https://dss.mycompany.com")
INTERNAL_REFERENCES = re.compile(r"§|\[inf|\[T:|\.md\b|spcs-protocol|design\.md")


def _statements(script: str) -> list[str]:
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [" ".join(part.split()) for part in body.split(";") if part.strip()]


def test_default_setup_matches_the_reviewed_golden_file():
    assert setup_sql(NAMES) == GOLDEN.read_text()


def test_setup_needs_the_dss_url_instead_of_a_placeholder():
    with pytest.raises(ConfigurationError, match="DSS URL") as caught:
        setup_sql(DeploymentNames())
    assert "--dss-url" in caught.value.fix
    assert "example.com" not in GOLDEN.read_text()


def test_a_rerun_with_another_dss_url_alters_the_existing_integration():
    statements = _statements(setup_sql(DeploymentNames.build(dss_url="http://dss.internal:11200")))
    create = statements.index(next(s for s in statements if s.startswith("CREATE SECURITY INTEGRATION IF NOT EXISTS")))
    alter = statements[create + 1]
    assert alter == ("ALTER SECURITY INTEGRATION SPCS_LLM_DATAIKU_OAUTH SET OAUTH_REDIRECT_URI = "
                     "'http://dss.internal:11200/dip/api/oauth2-callback' OAUTH_ALLOW_NON_TLS_REDIRECT_URI = TRUE")
    assert "OAUTH_ALLOW_NON_TLS_REDIRECT_URI = FALSE" in setup_sql(NAMES)
    assert not any("CREATE OR REPLACE SECURITY INTEGRATION" in s for s in statements)


def test_no_sql_script_cites_internal_documents():
    scripts = [setup_sql(NAMES), teardown_sql(NAMES), service_functions_sql(NAMES)]
    assert not [line for script in scripts for line in script.splitlines() if INTERNAL_REFERENCES.search(line)]


def test_the_teardown_script_names_only_commands_that_exist():
    from spcs_llm.cli import build_parser

    header = teardown_sql(NAMES).splitlines()[0]
    assert "--sql" not in header and "spcs-llm teardown --execute" in header
    build_parser().parse_args(["teardown", "--execute", "--yes"])


def test_setup_covers_the_consolidated_checklist_of_spcs_protocol_e3():
    statements = _statements(setup_sql(NAMES))
    expected = [
        "CREATE ROLE IF NOT EXISTS SPCS_LLM_DEPLOYER",
        "CREATE SCHEMA IF NOT EXISTS SPCS_LLM.MODELS",
        "GRANT USAGE, MONITOR ON COMPUTE POOL SPCS_LLM_GPU_POOL TO ROLE SPCS_LLM_DEPLOYER",
        "GRANT BIND SERVICE ENDPOINT ON ACCOUNT TO ROLE SPCS_LLM_DEPLOYER",
        "CREATE IMAGE REPOSITORY IF NOT EXISTS SPCS_LLM.MODELS.IMAGES",
        "GRANT USAGE ON INTEGRATION SPCS_LLM_EGRESS_EAI TO ROLE SPCS_LLM_DEPLOYER",
        "GRANT USAGE ON SCHEMA SPCS_LLM.MODELS TO ROLE SPCS_LLM_USER",
    ]
    for statement in expected:
        assert statement in statements
    pool = next(s for s in statements if s.startswith("CREATE COMPUTE POOL IF NOT EXISTS SPCS_LLM_GPU_POOL"))
    assert "INSTANCE_FAMILY = GPU_NV_S" in pool and "AUTO_SUSPEND_SECS = 600" in pool and "AUTO_RESUME = TRUE" in pool
    oauth = next(s for s in statements if s.startswith("CREATE SECURITY INTEGRATION"))
    assert "OAUTH_REDIRECT_URI = 'https://dss.mycompany.com/dip/api/oauth2-callback'" in oauth
    assert "OAUTH_ISSUE_REFRESH_TOKENS = TRUE" in oauth and "OAUTH_CLIENT = CUSTOM" in oauth
    assert "NON_TLS" not in oauth
    # Role before use, pools before their grants, account part before switching to the deployer role.
    assert statements.index("USE ROLE ACCOUNTADMIN") < statements.index("USE ROLE SPCS_LLM_DEPLOYER")


def test_user_names_flow_into_every_statement():
    names = DeploymentNames.build(database="ml", schema="llm", gpu_pool="big_gpus", gpu_instance_family="gpu_nv_m",
                                  dss_url="http://localhost:11200/", user_role="analysts")
    script = setup_sql(names, external_access=False, auto_suspend_secs=120)
    assert "CREATE COMPUTE POOL IF NOT EXISTS BIG_GPUS" in script and "INSTANCE_FAMILY = GPU_NV_M" in script
    assert "GRANT USAGE ON SCHEMA ML.LLM TO ROLE ANALYSTS" in script
    assert "OAUTH_REDIRECT_URI = 'http://localhost:11200/dip/api/oauth2-callback'" in script
    assert "OAUTH_ALLOW_NON_TLS_REDIRECT_URI = TRUE" in script
    assert "NETWORK RULE" not in script and "EXTERNAL ACCESS INTEGRATION" not in script
    assert "AUTO_SUSPEND_SECS = 120" in script


@pytest.mark.parametrize("bad", [{"database": "X; DROP DATABASE Y"}, {"user_role": "a-b"}, {"dss_url": "ftp://x"},
                                 {"dss_url": "https://x/'; DROP"}, {"gpu_instance_family": "GPU NV"}])
def test_names_that_would_break_the_sql_are_refused(bad):
    with pytest.raises(ConfigurationError) as refused:
        DeploymentNames.build(**bad)
    assert_fix(refused, "--dss-url" if "dss_url" in bad else "letters, digits, '_' and '$' only")


def test_teardown_stops_services_before_dropping_pools_and_drops_everything_billable():
    statements = _statements(teardown_sql(DeploymentNames()))
    assert statements.index("ALTER COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL STOP ALL") < statements.index(
        "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL")
    for statement in ("DROP COMPUTE POOL IF EXISTS SPCS_LLM_CPU_POOL", "DROP WAREHOUSE IF EXISTS SPCS_LLM_WH",
                      "DROP DATABASE IF EXISTS SPCS_LLM", "DROP INTEGRATION IF EXISTS SPCS_LLM_EGRESS_EAI"):
        assert statement in statements


def test_teardown_can_keep_the_registered_models():
    statements = _statements(teardown_sql(DeploymentNames(), keep_models=True))
    assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in statements
    assert not any(s.startswith("DROP DATABASE") for s in statements)


def test_service_functions_bind_each_model_route_and_grant_the_user_role():
    script = service_functions_sql(DeploymentNames(), [CATALOG["zephyr-7b-beta"], CATALOG["all-minilm-l6-v2"]])
    chat = re.search(r"CREATE OR REPLACE FUNCTION SPCS_LLM\.MODELS\.ZEPHYR_7B_BETA_CHAT\(INPUT OBJECT\).*?;", script,
                     re.S)
    assert chat and "SERVICE = SPCS_LLM.MODELS.ZEPHYR_7B_BETA_SVC" in chat[0] and "AS '/__call__'" in chat[0]
    embed = re.search(r"FUNCTION SPCS_LLM\.MODELS\.ALL_MINILM_L6_V2_EMBED\(INPUT OBJECT\).*?;", script, re.S)
    assert embed and "MAX_BATCH_ROWS = 64" in embed[0] and "AS '/encode'" in embed[0]
    assert "GRANT USAGE ON FUNCTION SPCS_LLM.MODELS.ZEPHYR_7B_BETA_CHAT(OBJECT) TO ROLE SPCS_LLM_USER;" in script
