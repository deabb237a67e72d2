"""One backend interface (issue 19, P2): the transport builds each error with the backend's fix the first time."""

import pytest
import responses

from spcs_llm.core.backend import PLAIN, BackendProfile
from spcs_llm.core.config import EndpointConfig
from spcs_llm.core.errors import (
    AuthenticationError,
    InputTooLongError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestRejectedError,
    ServiceResumeTimeoutError,
)
from spcs_llm.core.http_answers import error_for_status
from spcs_llm.core.retry import RetrySettings
from spcs_llm.core.transport import Transport
from spcs_llm.cortex.errors import CORTEX_FIXES, cortex_profile
from spcs_llm.spcs.client import SPCS_PROFILE

URL = "https://profile-org-acct.snowflakecomputing.com"
PROFILE = BackendProfile(name="test", fixes={RequestRejectedError: "rejected fix", RateLimitedError: "slow down"},
                         auth_fix="auth fix", cold_starts=False, retry=RetrySettings(deploy_403_window=0.0))


class _Tokens:
    def credential(self):
        from spcs_llm.core.auth.credential import Credential

        return Credential("token-for-profile-tests", float("inf"), kind="pat")

    def renew(self, rejected):
        raise AuthenticationError("cannot renew")


def test_the_most_specific_registered_type_wins_and_subclasses_inherit_it():
    assert PROFILE.error(PayloadTooLargeError, "too big", status=413).fix == "rejected fix"
    assert isinstance(PROFILE.error(PayloadTooLargeError, "too big"), PayloadTooLargeError)
    assert PROFILE.error(InputTooLongError, "long").fix == InputTooLongError.default_fix  # not registered
    assert PROFILE.error(AuthenticationError, "no").fix == "auth fix"


def test_an_explicit_fix_stays_unless_the_backend_has_its_own():
    assert PLAIN.error(RequestRejectedError, "x", fix="given").fix == "given"
    assert PROFILE.error(RequestRejectedError, "x", fix="given").fix == "rejected fix"


def test_spcs_keeps_the_errors_own_fixes_and_cortex_declares_its_own():
    assert SPCS_PROFILE.error(RateLimitedError, "x").fix == RateLimitedError.default_fix
    cortex = cortex_profile("cortex auth fix")
    assert cortex.error(RateLimitedError, "x").fix == CORTEX_FIXES[RateLimitedError]
    assert cortex.error(AuthenticationError, "x").fix == "cortex auth fix"
    assert not cortex.cold_starts and cortex.retry.deploy_403_window == 0.0


def test_error_builders_take_the_profile():
    assert error_for_status("u", 429, "{}", profile=PROFILE).fix == "slow down"
    assert error_for_status("u", 429, "{}").fix == RateLimitedError.default_fix


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_the_transport_raises_the_backends_error_first_time(http):
    http.add(responses.POST, f"{URL}/x", status=429, json={"message": "busy"})
    transport = Transport(EndpointConfig(base_url=URL, route="x", max_attempts=1), _Tokens(), profile=PROFILE,
                          sleep=lambda _s: None)
    with pytest.raises(RateLimitedError) as raised:
        transport.post_json("x", {})
    assert raised.value.fix == "slow down"


def test_a_profile_without_cold_starts_never_waits_for_a_resume(http):
    http.add(responses.POST, f"{URL}/x", status=502)
    config = EndpointConfig(base_url=URL, route="x", max_attempts=1, cold_start_timeout=600.0)
    with pytest.raises(Exception) as raised:
        Transport(config, _Tokens(), profile=PROFILE, sleep=lambda _s: None).post_json("x", {})
    assert not isinstance(raised.value, ServiceResumeTimeoutError) and len(http.calls) == 1
