"""Keep secrets out of logs, traces and exception text.

Every token source registers the secrets it handles; ``redact`` replaces them, and anything that looks like
an auth header value or a JWT, with a marker. ``RedactingFilter`` applies it to every ``spcs_llm`` log record.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict

_MARK = "***"
_MIN_SECRET_LENGTH = 8
# Long-running DSS processes see a new session token per user per hour; keep the most recent ones only (an
# evicted token expired long ago) and match them all with one compiled pattern, rebuilt when the set changes.
_MAX_SECRETS = 10_000
_lock = threading.Lock()
_secrets: OrderedDict[str, None] = OrderedDict()
_secret_pattern: re.Pattern[str] | None = None

_PATTERNS = [
    re.compile(r'(Snowflake\s+Token=")[^"]*(")', re.IGNORECASE),
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(r"(Basic\s+)[A-Za-z0-9+/=]+", re.IGNORECASE),
    re.compile(r"()eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*()"),
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----).*?(-----END [A-Z ]*PRIVATE KEY-----)", re.DOTALL),
    re.compile(
        r'((?:"|\b)(?:token|access_token|refresh_token|masterToken|sessionToken|password|client_secret|'
        r'assertion|subject_token|TOKEN|code_verifier)"?\s*[:=]\s*"?)[^"&,\s}]{8,}()',
    ),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value so that ``redact`` removes it wherever it appears."""
    global _secret_pattern
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _secrets:
            _secrets.move_to_end(value)
            return
        _secrets[value] = None
        if len(_secrets) > _MAX_SECRETS:
            _secrets.popitem(last=False)
        _secret_pattern = None


def _known_secrets() -> re.Pattern[str] | None:
    global _secret_pattern
    with _lock:
        if _secret_pattern is None and _secrets:
            longest_first = sorted(_secrets, key=len, reverse=True)
            _secret_pattern = re.compile("|".join(re.escape(secret) for secret in longest_first))
        return _secret_pattern


def redact(text: object) -> str:
    """Return ``text`` as a string with every registered secret and secret-looking value masked."""
    out = "" if text is None else str(text)
    known = _known_secrets()
    if known is not None:
        out = known.sub(_MARK, out)
    for pattern in _PATTERNS:
        out = pattern.sub(lambda m: f"{m.group(1)}{_MARK}{m.group(2) if m.lastindex and m.lastindex >= 2 else ''}", out)
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


_redacted_prefixes: tuple[str, ...] = ()


def redact_library_records(*prefixes: str) -> None:
    """Redact every record logged under these logger-name prefixes, whatever handler it reaches.

    Filters only see records logged to their own logger, and libraries such as snowflake-ml stream container logs
    through loggers with their own handlers and ``propagate = False``; so the redaction happens where records are
    made (the log record factory), once per process.
    """
    global _redacted_prefixes
    with _lock:
        new = tuple(prefix for prefix in prefixes if prefix not in _redacted_prefixes)
        if not new:
            return
        if not _redacted_prefixes:
            make_record = logging.getLogRecordFactory()

            def redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
                record = make_record(*args, **kwargs)
                if _logged_under(record.name, _redacted_prefixes):
                    record.msg = redact(record.getMessage())
                    record.args = None
                return record

            logging.setLogRecordFactory(redacting_factory)
        _redacted_prefixes += new


def _logged_under(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether the logger ``name``, or a logger it hangs under, is named with one of ``prefixes``.

    Parents count: snowflake-ml names the logger of a service's streamed container logs after the service
    (``DB.SCHEMA.SERVICE``) and hangs it under an operation logger ``snowflake_ml_operation_<id>``
    (``snowflake/ml/_internal/utils/service_logger.py``, ``get_logger``), not under ``snowflake``.
    """
    if name.startswith(prefixes):
        return True
    logger = logging.Logger.manager.loggerDict.get(name)
    while isinstance(logger, logging.Logger):
        if logger.name.startswith(prefixes):
            return True
        logger = logger.parent
    return False


def get_logger(name: str) -> logging.Logger:
    """A module logger whose records are redacted (logger filters are not inherited, so each gets one)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
