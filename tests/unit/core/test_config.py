"""DSS config dicts → validated settings, with errors that name the fix."""

import pytest

from error_checks import assert_fix
from spcs_llm.core.config import normalise_pem
from spcs_llm.core.errors import ConfigurationError, CredentialMissingError
from spcs_llm.spcs.config import parse_chat_config, parse_embedding_config


def oauth_config(**overrides):
    config = {
        "auth_type": "oauth",
        "oauth_preset": {"snowflake_oauth": "user-access-token-123", "account_url": "myacct.snowflakecomputing.com"},
        "endpoint": "abc-org-acct.snowflakecomputing.app",
    }
    config.update(overrides)
    return config


def test_chat_defaults_and_host_normalisation():
    cfg = parse_chat_config(oauth_config())
    assert cfg.endpoint.base_url == "https://abc-org-acct.snowflakecomputing.app"
    assert cfg.endpoint.route == "__call__"
    assert cfg.endpoint.url == "https://abc-org-acct.snowflakecomputing.app/__call__"
    assert cfg.endpoint.read_timeout <= 60
    assert cfg.auth.kind == "oauth" and cfg.auth.oauth_mode == "auto"
    assert cfg.auth.account_url == "https://myacct.snowflakecomputing.com"
    assert cfg.protocol == "auto" and cfg.family == "auto"


def test_full_url_route_and_float_ints():
    cfg = parse_chat_config(oauth_config(endpoint="https://h.example.app/predict/", max_parallelism=8.0))
    assert cfg.endpoint.base_url == "https://h.example.app" and cfg.endpoint.route == "predict"
    assert cfg.endpoint.max_parallelism == 8 and isinstance(cfg.endpoint.max_parallelism, int)


def test_missing_oauth_token_tells_user_to_authorise():
    with pytest.raises(CredentialMissingError) as error:
        parse_chat_config(oauth_config(oauth_preset={"snowflake_oauth": ""}))
    assert "Profile" in str(error.value) and "Credentials" in str(error.value)


def test_missing_endpoint_names_the_setting():
    with pytest.raises(ConfigurationError, match="SHOW ENDPOINTS"):
        parse_chat_config(oauth_config(endpoint=""))


@pytest.mark.parametrize("bad", [{"max_parallelism": 0}, {"max_parallelism": "many"}, {"protocol": "grpc"}])
def test_bad_values_are_rejected_clearly(bad):
    with pytest.raises(ConfigurationError) as refused:
        parse_chat_config(oauth_config(**bad))
    assert f"Setting '{next(iter(bad))}'" in refused.value.message
    assert_fix(refused, "Custom LLM connection")


def test_service_account_pat_and_keypair():
    pat = parse_embedding_config(
        {"auth_type": "service", "service_preset": {"service_auth": "pat", "pat": "pat-secret-value"},
         "endpoint": "e.app"}
    )
    assert pat.auth.kind == "pat" and pat.endpoint.route == "encode" and pat.cost.instance_family == "CPU_X64_S"
    assert "pat-secret-value" not in repr(pat)
    with pytest.raises(ConfigurationError, match="user and a PEM"):
        parse_embedding_config({"auth_type": "service", "service_preset": {"service_auth": "keypair"}, "endpoint": "e"})
    with pytest.raises(ConfigurationError, match="no service-account preset"):
        parse_embedding_config({"auth_type": "service", "endpoint": "e"})


def test_pem_pasted_on_one_line_gets_its_line_breaks_back():
    body = "A" * 70 + "B" * 10
    flat = f"-----BEGIN PRIVATE KEY----- {body[:40]} {body[40:]} -----END PRIVATE KEY-----"
    pem = normalise_pem(flat)
    lines = pem.strip().split("\n")
    assert lines[0] == "-----BEGIN PRIVATE KEY-----" and lines[-1] == "-----END PRIVATE KEY-----"
    assert "".join(lines[1:-1]) == body and all(len(line) <= 64 for line in lines)
    assert normalise_pem(pem) == pem


def test_embedding_cost_override():
    cfg = parse_embedding_config(
        {"auth_type": "service", "service_preset": {"pat": "pat-secret-value"}, "endpoint": "e",
         "instance_family": "GPU_NV_S", "credits_per_hour": 1.5, "dollars_per_credit": 2}
    )
    assert cfg.cost.instance_family == "GPU_NV_S" and cfg.cost.credits_per_hour == 1.5
    assert cfg.cost.dollars_per_credit == 2.0
