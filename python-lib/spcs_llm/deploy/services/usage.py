"""What the pools actually billed over the last days, from Snowflake's own metering
(``SNOWFLAKE.ACCOUNT_USAGE.SNOWPARK_CONTAINER_SERVICES_HISTORY``: hourly credits per compute pool, up to three
hours late). Reading it needs a role with IMPORTED PRIVILEGES on the SNOWFLAKE database; without one the report
says so instead of failing the status command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from spcs_llm.core.redaction import get_logger

log = get_logger(__name__)

HISTORY_VIEW = "SNOWFLAKE.ACCOUNT_USAGE.SNOWPARK_CONTAINER_SERVICES_HISTORY"
NOT_READABLE = (f"Billed history not readable with the current role ({HISTORY_VIEW} needs IMPORTED PRIVILEGES on the "
                "SNOWFLAKE database: GRANT IMPORTED PRIVILEGES ON DATABASE SNOWFLAKE TO ROLE <role>).")


@dataclass(frozen=True)
class PoolUsage:
    pool: str
    credits: float
    billed_hours: int  # hours with any usage; a wake-up shows as at least one


def usage_sql(pools: list[str], days: int) -> str:
    """Credits and billed hours per pool over the last ``days`` (pool names were validated as identifiers)."""
    names = ", ".join(f"'{pool.upper()}'" for pool in pools)
    return (f"SELECT COMPUTE_POOL_NAME, SUM(CREDITS_USED) AS CREDITS, COUNT(*) AS BILLED_HOURS FROM {HISTORY_VIEW} "
            f"WHERE START_TIME >= DATEADD(day, -{int(days)}, CURRENT_TIMESTAMP()) AND CREDITS_USED > 0 "
            f"AND COMPUTE_POOL_NAME IN ({names}) GROUP BY COMPUTE_POOL_NAME ORDER BY COMPUTE_POOL_NAME")


def pool_usage(session: Any, pools: list[str], days: int) -> list[PoolUsage] | str:
    """Per-pool usage, or a one-line note saying why it cannot be read."""
    try:
        rows = session.sql(usage_sql(pools, days)).collect()
    except Exception as exc:  # noqa: BLE001 - missing privileges or an account without the view: a note, not a failure
        log.debug("Usage history not readable: %s", exc)
        return NOT_READABLE
    return [PoolUsage(str(row["COMPUTE_POOL_NAME"]), float(row["CREDITS"] or 0), int(row["BILLED_HOURS"] or 0))
            for row in rows]


def usage_report(usage: list[PoolUsage] | str, days: int, dollars_per_credit: float) -> str:
    if isinstance(usage, str):
        return usage
    total = sum(item.credits for item in usage)
    lines = [f"Billed over the last {days} day(s) (Snowflake metering, up to 3 h late): {total:.2f} credits "
             f"(${total * dollars_per_credit:,.2f})"]
    lines += [f"  {item.pool:<28} {item.credits:>8.2f} credits in {item.billed_hours} billed hour(s)" for item in usage]
    return "\n".join(lines)


@dataclass(frozen=True)
class DailyUsage:
    day: date
    credits: float


def daily_usage_sql(pools: list[str], days: int) -> str:
    """Credits per calendar day of the given pools, today and the ``days - 1`` days before (same view, same filter)."""
    names = ", ".join(f"'{pool.upper()}'" for pool in pools)
    return (f"SELECT TO_DATE(START_TIME) AS DAY, SUM(CREDITS_USED) AS CREDITS FROM {HISTORY_VIEW} "
            f"WHERE START_TIME >= DATEADD(day, -{int(days) - 1}, CURRENT_DATE()) AND CREDITS_USED > 0 "
            f"AND COMPUTE_POOL_NAME IN ({names}) GROUP BY DAY ORDER BY DAY")


def daily_usage(session: Any, pools: list[str], days: int, today: date) -> list[DailyUsage] | str:
    """One entry per day (0 credits on days without usage), oldest first; or the note ``pool_usage`` gives."""
    try:
        rows = session.sql(daily_usage_sql(pools, days)).collect()
    except Exception as exc:  # noqa: BLE001 - as pool_usage: missing privileges are a note, not a failure
        log.debug("Daily usage not readable: %s", exc)
        return NOT_READABLE
    billed = {_as_date(row["DAY"]): float(row["CREDITS"] or 0) for row in rows}
    first = today - timedelta(days=int(days) - 1)
    return [DailyUsage(day, billed.get(day, 0.0)) for day in (first + timedelta(days=i) for i in range(int(days)))]


def _as_date(value: Any) -> date:
    """A DATE column comes back as ``datetime.date`` (Snowflake Python connector docs, data type mappings); any other
    value is read as ISO text."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
