"""OAuth token sources (direct, exchanged, auto) and the process-wide cache's reuse and renewal rules."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

from error_checks import assert_fix
from spcs_llm.core.auth import Credential, clear_token_cache, identity_of, token_source_for
from spcs_llm.core.auth.cache import TOKEN_CACHE, refresh_margin
from spcs_llm.core.config import AuthConfig
from spcs_llm.core.errors import AuthenticationError, ConfigurationError, CredentialMissingError, TransportError

ACCOUNT = "https://myorg-myacct.snowflakecomputing.com"
HOST = "abc123-myorg-myacct.snowflakecomputing.app"
LOGIN_URL = f"{ACCOUNT}/session/v1/login-request"
RENEW_URL = f"{ACCOUNT}/session/token-request"
ACCESS_TOKEN = "ver:1-hint:111-access-token-user-a"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def oauth(mode: str = "exchange", token: str = ACCESS_TOKEN, role: str | None = "ANALYST", url=ACCOUNT) -> AuthConfig:
    return AuthConfig(kind="oauth", account_url=url, role=role, oauth_mode=mode, oauth_token=token)


def login_ok(
    session: str = "session-token-0001", master: str = "master-token-0001", validity=3600, master_validity=14400
):
    return {
        "success": True,
        "code": None,
        "message": None,
        "data": {
            "token": session,
            "validityInSeconds": validity,
            "masterToken": master,
            "masterValidityInSeconds": master_validity,
            "sessionId": 1,
        },
    }


def login_refused(code: str, message: str = "refused") -> dict:
    return {"success": False, "code": code, "message": message, "data": {"errorCode": code}}


def renew_ok(session: str, validity: int | None = 3600) -> dict:
    data = {"sessionToken": session}
    if validity is not None:
        data["validityInSeconds"] = validity
    return {"success": True, "data": data}


def body_of(call) -> dict:
    return json.loads(call.request.body)


# --- direct OAuth -----------------------------------------------------------------------------------------------


def test_direct_oauth_sends_the_access_token_with_the_oauth_method_header(http):
    credential = token_source_for(oauth("direct"), HOST).credential()
    assert credential.headers() == {
        "Authorization": f'Snowflake Token="{ACCESS_TOKEN}"',
        "X-SF-SPCS-Authentication-Method": "OAUTH",
    }
    assert credential.kind == "oauth-direct"
    assert credential.expires_at == float("inf")
    assert len(http.calls) == 0


def test_direct_oauth_cannot_renew_and_says_to_reauthorise(http):
    source = token_source_for(oauth("direct"), HOST)
    with pytest.raises(CredentialMissingError) as caught:
        source.renew(source.credential())
    assert "Profile & Settings → Credentials" in str(caught.value)
    assert HOST in str(caught.value)
    assert len(http.calls) == 0


def test_a_fresher_access_token_from_dss_is_used_at_once():
    first = token_source_for(oauth("direct", token="ver:1-hint:old-token-aaaa"), HOST)
    second = token_source_for(oauth("direct", token="ver:1-hint:new-token-bbbb"), HOST)
    assert first.credential().token == "ver:1-hint:old-token-aaaa"
    assert second.credential().token == "ver:1-hint:new-token-bbbb"
    assert first.identity != second.identity


# --- exchanged OAuth --------------------------------------------------------------------------------------------


def test_exchange_posts_the_documented_login_request(http, clock):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    credential = token_source_for(oauth("exchange"), HOST).credential()

    request = http.calls[0].request
    query = parse_qs(urlparse(request.url).query)
    assert uuid.UUID(query["request_id"][0]).version == 4
    assert query["roleName"] == ["ANALYST"]
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert body_of(http.calls[0]) == {
        "data": {
            "CLIENT_APP_ID": "spcs-llm",
            "CLIENT_APP_VERSION": __import__("spcs_llm").__version__,
            "ACCOUNT_NAME": "MYORG-MYACCT",
            "AUTHENTICATOR": "OAUTH",
            "TOKEN": ACCESS_TOKEN,
            "SESSION_PARAMETERS": {"PYTHON_CONNECTOR_QUERY_RESULT_FORMAT": "JSON"},
        }
    }
    assert credential.headers() == {"Authorization": 'Snowflake Token="session-token-0001"'}
    assert credential.kind == "oauth-session"
    assert credential.expires_at == START + 3600


def test_an_explicit_account_identifier_names_the_login_account(http):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    config = AuthConfig(
        kind="oauth", account_url=ACCOUNT, account_identifier="localtest", oauth_mode="exchange",
        oauth_token=ACCESS_TOKEN,
    )
    token_source_for(config, HOST).credential()
    assert body_of(http.calls[0])["data"]["ACCOUNT_NAME"] == "LOCALTEST"


def test_exchange_without_a_role_sends_no_role_name(http):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    token_source_for(oauth("exchange", role=None), HOST).credential()
    assert "roleName" not in parse_qs(urlparse(http.calls[0].request.url).query)


def test_session_token_is_reused_until_its_margin_then_renewed_with_the_master_token(http, clock):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    http.add(responses.POST, RENEW_URL, json=renew_ok("session-token-0002"))
    source = token_source_for(oauth("exchange"), HOST)

    assert source.credential().token == "session-token-0001"
    clock.move_to("2026-01-01 00:53:59")  # 361 s before expiry: outside the 360 s (10 %) margin
    assert token_source_for(oauth("exchange"), HOST).credential().token == "session-token-0001"
    assert len(http.calls) == 1

    clock.move_to("2026-01-01 00:54:01")  # inside the margin
    renewed = source.credential()
    assert renewed.token == "session-token-0002"
    renewal = http.calls[1].request
    assert renewal.headers["Authorization"] == 'Snowflake Token="master-token-0001"'
    # snowflake-connector network.py sends the renewal's id as `requestId` (login-request keeps `request_id`)
    query = parse_qs(urlparse(renewal.url).query)
    assert set(query) == {"requestId"} and uuid.UUID(query["requestId"][0]).version == 4
    assert body_of(http.calls[1]) == {"oldSessionToken": "session-token-0001", "requestType": "RENEW"}
    assert renewed.expires_at == START + 3241 + 3600
    assert len(http.calls) == 2


def test_rejected_session_token_is_renewed_and_default_validity_applies(http, clock):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    http.add(responses.POST, RENEW_URL, json=renew_ok("session-token-0002", validity=None))
    source = token_source_for(oauth("exchange"), HOST)
    renewed = source.renew(source.credential())
    assert renewed.token == "session-token-0002"
    assert renewed.expires_at == START + 3600
    assert source.credential() == renewed


def test_renewal_answers_in_the_driver_field_names_are_read(http, clock):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    http.add(responses.POST, RENEW_URL, json={"success": True, "data": {
        "sessionToken": "session-token-0002", "validityInSecondsST": 1800,
        "masterToken": "master-token-0002", "validityInSecondsMT": 7200,
    }})
    http.add(responses.POST, RENEW_URL, json=renew_ok("session-token-0003"))
    source = token_source_for(oauth("exchange"), HOST)
    renewed = source.renew(source.credential())
    assert renewed.expires_at == START + 1800
    source.renew(renewed)
    assert http.calls[2].request.headers["Authorization"] == 'Snowflake Token="master-token-0002"'


def test_refused_renewal_falls_back_to_a_new_login(http, clock):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    http.add(responses.POST, RENEW_URL, json=login_refused("390114", "Authentication token has expired."))
    http.add(responses.POST, LOGIN_URL, json=login_ok("session-token-0003", "master-token-0003"))
    source = token_source_for(oauth("exchange"), HOST)
    renewed = source.renew(source.credential())
    assert renewed.token == "session-token-0003"
    assert [urlparse(c.request.url).path for c in http.calls] == [
        "/session/v1/login-request",
        "/session/token-request",
        "/session/v1/login-request",
    ]


def test_refused_renewal_and_refused_login_ask_to_reauthorise(http):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    http.add(responses.POST, RENEW_URL, json=login_refused("390114"))
    http.add(responses.POST, LOGIN_URL, json=login_refused("390318", "OAuth access token expired."))
    source = token_source_for(oauth("exchange"), HOST)
    with pytest.raises(CredentialMissingError, match="390318"):
        source.renew(source.credential())


def test_an_expired_master_token_goes_straight_to_login(http, clock):
    http.add(responses.POST, LOGIN_URL, json=login_ok(validity=3600, master_validity=7200))
    http.add(responses.POST, LOGIN_URL, json=login_ok("session-token-0004"))
    source = token_source_for(oauth("exchange"), HOST)
    source.credential()
    clock.move_to("2026-01-01 02:00:00")
    assert source.credential().token == "session-token-0004"
    assert all(urlparse(c.request.url).path == "/session/v1/login-request" for c in http.calls)


def test_renewing_a_credential_another_thread_renewed_already_costs_nothing(http):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    http.add(responses.POST, RENEW_URL, json=renew_ok("session-token-0002"))
    source = token_source_for(oauth("exchange"), HOST)
    stale = source.credential()
    renewed = source.renew(stale)
    assert source.renew(stale) == renewed
    assert len(http.calls) == 2


@pytest.mark.parametrize(("code", "word"), [("390303", "invalid"), ("390318", "expired")])
def test_refused_access_token_asks_to_reauthorise(http, code, word):
    http.add(responses.POST, LOGIN_URL, json=login_refused(code, "OAuth access token is bad."))
    with pytest.raises(CredentialMissingError) as caught:
        token_source_for(oauth("exchange"), HOST).credential()
    text = str(caught.value)
    assert code in text and word in text
    assert "Authorize" in text


def test_login_forbidden_names_account_url_and_network_policy(http):
    http.add(responses.POST, LOGIN_URL, status=403, body="Forbidden")
    with pytest.raises(ConfigurationError) as caught:
        token_source_for(oauth("exchange"), HOST).credential()
    assert "Snowflake account URL" in str(caught.value)
    assert "network policy" in str(caught.value)
    assert caught.value.status == 403


def test_other_login_refusals_are_authentication_errors_with_snowflake_message(http):
    http.add(responses.POST, LOGIN_URL, json=login_refused("390189", "Role ANALYST is not allowed."))
    with pytest.raises(AuthenticationError, match="Role ANALYST is not allowed"):
        token_source_for(oauth("exchange"), HOST).credential()


def test_non_json_answer_means_a_wrong_account_url(http):
    http.add(responses.POST, LOGIN_URL, body="<html>hello</html>")
    with pytest.raises(ConfigurationError, match="not JSON"):
        token_source_for(oauth("exchange"), HOST).credential()


def test_exchange_needs_an_account_url():
    with pytest.raises(ConfigurationError, match="Snowflake account URL"):
        token_source_for(oauth("exchange", url=None), HOST)


# --- transient failures of the account ----------------------------------------------------------------------------


def test_transient_account_failures_are_retried(http):
    http.add(responses.POST, LOGIN_URL, status=503)
    http.add(responses.POST, LOGIN_URL, status=429)
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    assert token_source_for(oauth("exchange"), HOST).credential().token == "session-token-0001"
    assert len(http.calls) == 3


def test_unreachable_account_is_a_transport_error_naming_the_setting(http):
    http.add(responses.POST, LOGIN_URL, body=requests.ConnectionError("Name or service not known"))
    with pytest.raises(TransportError, match="Snowflake account URL"):
        token_source_for(oauth("exchange"), HOST).credential()
    assert len(http.calls) == 3


def test_persistent_server_errors_stop_after_three_attempts(http):
    http.add(responses.POST, LOGIN_URL, status=502)
    with pytest.raises(TransportError, match="HTTP 502"):
        token_source_for(oauth("exchange"), HOST).credential()
    assert len(http.calls) == 3


def test_account_redirects_are_not_followed(http):
    http.add(responses.POST, LOGIN_URL, status=302, headers={"Location": "https://login.example/"})
    with pytest.raises(ConfigurationError, match="redirected"):
        token_source_for(oauth("exchange"), HOST).credential()
    assert len(http.calls) == 1


def test_the_given_session_is_used_with_timeouts_and_no_redirects(http):
    seen = {}

    class RecordingSession(requests.Session):
        def post(self, url, **kwargs):
            seen.update(kwargs)
            return super().post(url, **kwargs)

    http.add(responses.POST, LOGIN_URL, json=login_ok())
    token_source_for(oauth("exchange"), HOST, session=RecordingSession()).credential()
    assert seen["timeout"] == (10.0, 30.0)
    assert seen["allow_redirects"] is False


# --- auto -------------------------------------------------------------------------------------------------------


def test_auto_starts_direct_and_switches_to_exchange_for_good(http):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    http.add(responses.POST, LOGIN_URL, json=login_ok("session-token-0002", "master-token-0002"))
    source = token_source_for(oauth("auto"), HOST)
    direct = source.credential()
    assert direct.kind == "oauth-direct"
    assert len(http.calls) == 0

    switched = source.renew(direct)
    assert switched.kind == "oauth-session"
    assert switched.token == "session-token-0001"
    assert source.credential() == switched

    later = token_source_for(oauth("auto", token="ver:1-hint:222-fresher-token"), HOST).credential()
    assert later.kind == "oauth-session"
    assert body_of(http.calls[1])["data"]["TOKEN"] == "ver:1-hint:222-fresher-token"


def test_auto_renews_a_rejected_session_token_through_the_exchange(http):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    http.add(responses.POST, RENEW_URL, json=renew_ok("session-token-0002"))
    source = token_source_for(oauth("auto"), HOST)
    session = source.renew(source.credential())
    assert source.renew(session).token == "session-token-0002"


def test_auto_switch_on_one_endpoint_leaves_another_direct(http):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    source = token_source_for(oauth("auto"), HOST)
    source.renew(source.credential())
    other = token_source_for(oauth("auto"), "other-myorg-myacct.snowflakecomputing.app")
    assert other.credential().kind == "oauth-direct"


def test_auto_without_account_url_stays_direct(http):
    source = token_source_for(oauth("auto", url=None), HOST)
    with pytest.raises(CredentialMissingError) as refused:
        source.renew(source.credential())
    assert_fix(refused, "Profile & Settings → Credentials", "Authorize")


# --- identity and the cache -------------------------------------------------------------------------------------


def test_identity_is_a_short_hash_without_the_secret():
    identity = token_source_for(oauth("direct"), HOST).identity
    assert identity == identity_of("oauth", ACCOUNT, None, ACCESS_TOKEN)
    assert len(identity) == 16
    assert ACCESS_TOKEN not in identity and "access" not in identity


def test_two_users_never_share_a_session(http):
    def login(request):
        token = json.loads(request.body)["data"]["TOKEN"]
        return 200, {}, json.dumps(login_ok(f"session-of-{token}", f"master-of-{token}"))

    http.add_callback(responses.POST, LOGIN_URL, callback=login)
    alice = token_source_for(oauth("exchange", token="ver:1-hint:alice-token"), HOST)
    bob = token_source_for(oauth("exchange", token="ver:1-hint:bob-token-x"), HOST)
    assert alice.credential().token == "session-of-ver:1-hint:alice-token"
    assert bob.credential().token == "session-of-ver:1-hint:bob-token-x"
    assert alice.credential().token == "session-of-ver:1-hint:alice-token"
    assert len(http.calls) == 2


def test_endpoint_and_role_are_part_of_the_key(http):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    http.add(responses.POST, LOGIN_URL, json=login_ok("session-token-0002"))
    http.add(responses.POST, LOGIN_URL, json=login_ok("session-token-0003"))
    token_source_for(oauth("exchange"), HOST).credential()
    token_source_for(oauth("exchange"), "https://other.snowflakecomputing.app/").credential()
    token_source_for(oauth("exchange", role="OTHER_ROLE"), HOST).credential()
    assert len(http.calls) == 3


def test_clear_token_cache_forgets_everything(http):
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    token_source_for(oauth("exchange"), HOST).credential()
    assert len(TOKEN_CACHE) == 1
    clear_token_cache()
    assert len(TOKEN_CACHE) == 0


def test_spent_entries_are_evicted_when_new_ones_arrive(http, clock):
    http.add(responses.POST, LOGIN_URL, json=login_ok(validity=600, master_validity=1200))
    token_source_for(oauth("exchange", token="ver:1-hint:first-token"), HOST).credential()
    clock.move_to("2026-01-01 01:00:00")
    token_source_for(oauth("direct", token="ver:1-hint:second-token"), HOST).credential()
    assert len(TOKEN_CACHE) == 1


@pytest.mark.parametrize(
    ("lifetime", "margin"), [(3600.0, 360.0), (120.0, 30.0), (40.0, 20.0), (float("inf"), 0.0)]
)
def test_refresh_margin_is_ten_percent_at_least_thirty_seconds_at_most_half(lifetime, margin):
    assert refresh_margin(START, START + lifetime) == margin


def test_credential_repr_hides_the_token():
    assert "s3cr3t-token" not in repr(Credential(token="s3cr3t-token", expires_at=1.0))


def test_an_empty_endpoint_host_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="Endpoint"):
        token_source_for(oauth("direct"), " ")


def test_a_missing_oauth_token_asks_to_authorise():
    config = AuthConfig(kind="oauth", account_url=ACCOUNT, oauth_token=None)
    with pytest.raises(CredentialMissingError) as refused:
        token_source_for(config, HOST)
    assert_fix(refused, "Profile & Settings → Credentials", "Authorize")


def test_account_calls_honour_retry_after_under_the_one_retry_policy(http, monkeypatch):
    """Account calls use core/retry.py's RetryPolicy: a 429's Retry-After sets the wait (capped at 10 s)."""
    from spcs_llm.core.auth import account

    waits = []
    monkeypatch.setattr(account, "RETRY_SLEEP", waits.append)
    http.add(responses.POST, LOGIN_URL, status=429, headers={"Retry-After": "3"})
    http.add(responses.POST, LOGIN_URL, status=503, headers={"Retry-After": "120"})
    http.add(responses.POST, LOGIN_URL, json=login_ok())
    assert token_source_for(oauth("exchange"), HOST).credential().token == "session-token-0001"
    assert waits == [3.0, account.ACCOUNT_RETRY_SETTINGS.retry_after_cap]
