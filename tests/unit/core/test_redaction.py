"""Secrets never reach logs or exception text, however they are embedded."""

import io
import logging
from collections import OrderedDict

from spcs_llm.core import redaction
from spcs_llm.core.errors import AuthenticationError
from spcs_llm.core.redaction import get_logger, redact, register_secret


def test_registered_secrets_and_secret_shapes_are_masked():
    register_secret("plain-secret-value-42")
    register_secret("plain-secret-value-42-longer")
    text = (
        'a plain-secret-value-42-longer b Authorization: Snowflake Token="abc.def" Bearer xyz123 '
        "eyJhbGciOi.eyJzdWIiOiJ4.c2lnbmF0dXJl password=hunter22 plain-secret-value-42"
    )
    out = redact(text)
    for leaked in ("plain-secret-value-42", "abc.def", "xyz123", "eyJhbGciOi", "hunter22"):
        assert leaked not in out
    assert out.startswith("a *** b")


def test_short_values_are_not_treated_as_secrets():
    register_secret("abc")
    assert redact("abc def") == "abc def"


def test_log_records_and_exceptions_are_redacted(caplog):
    register_secret("secret-token-in-log-1234")
    logger = get_logger("spcs_llm.test_redaction")
    with caplog.at_level(logging.DEBUG, logger="spcs_llm.test_redaction"):
        logger.info("sending %s", "secret-token-in-log-1234")
    assert "secret-token-in-log-1234" not in caplog.text and "***" in caplog.text
    error = AuthenticationError("rejected secret-token-in-log-1234", fix="use secret-token-in-log-1234 again")
    assert "secret-token-in-log-1234" not in str(error)


def test_the_secret_set_is_bounded_and_keeps_the_newest(monkeypatch):
    monkeypatch.setattr(redaction, "_MAX_SECRETS", 3)
    monkeypatch.setattr(redaction, "_secrets", OrderedDict())
    monkeypatch.setattr(redaction, "_secret_pattern", None)
    for i in range(5):
        register_secret(f"rotating-session-token-{i:04d}")
    assert "rotating-session-token-0004" not in redact("rotating-session-token-0004")
    assert "rotating-session-token-0002" not in redact("rotating-session-token-0002")
    assert list(redaction._secrets) == [f"rotating-session-token-{i:04d}" for i in (2, 3, 4)]


def test_key_value_masking_spares_ordinary_words():
    assert redact("token: not set") == "token: not set"
    assert "abcdefgh12345" not in redact('{"token": "abcdefgh12345"}')


def test_library_records_are_redacted_even_through_their_own_non_propagating_handlers():
    register_secret("library-echoed-secret-5678")
    stream = io.StringIO()
    logger = logging.getLogger("snowflake.ml.test_redaction_streamer")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        redaction.redact_library_records("snowflake")
        logger.warning("container says %s", "password=library-echoed-secret-5678")
    finally:
        logger.removeHandler(handler)
    assert "library-echoed-secret-5678" not in stream.getvalue() and "container says" in stream.getvalue()


def test_container_logs_snowflake_ml_streams_under_the_service_name_are_redacted(tmp_path, monkeypatch):
    """snowflake-ml names a service's log-streaming logger after the service and hangs it under its operation
    logger ``snowflake_ml_operation_<id>``, whose file handler keeps the log on disk (service_logger.py)."""
    from snowflake.ml._internal.utils import service_logger

    register_secret("container-echoed-password-91")
    monkeypatch.setattr(service_logger, "_get_log_file_path",
                        lambda operation_id: str(tmp_path / f"{operation_id}.log"))
    logger = service_logger.get_logger("DB.SCHEMA.REDACTION_TEST_SVC", service_logger.LogColor.BLUE,
                                       operation_id="model_deploy_redaction_test")
    stream = io.StringIO()
    logger.addHandler(logging.StreamHandler(stream))
    operation = logger.parent
    try:
        redaction.redact_library_records("snowflake")
        logger.warning("connecting as me/container-echoed-password-91 failed")
    finally:
        for owner in (logger, operation):
            for handler in list(owner.handlers):
                owner.removeHandler(handler)
                handler.close()
    on_disk = (tmp_path / "model_deploy_redaction_test.log").read_text()
    for text in (stream.getvalue(), on_disk):
        assert "container-echoed-password-91" not in text and "connecting as me/*** failed" in text
