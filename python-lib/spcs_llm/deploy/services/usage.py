"""What the pools actually billed over the last days, from Snowflake's own metering
(``SNOWFLAKE.ACCOUNT_USAGE.SNOWPARK_CONTAINER_SERVICES_HISTORY``: hourly credits per compute pool, up to three
hours late). Reading it needs a role with IMPORTED PRIVILEGES on the SNOWFLAKE database; without one the report
says so instead of failing the status command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spcs_llm.core.redaction import get_logger

log = get_logger(__name__)

HISTORY_VIEW = "SNOWFLAKE.ACCOUNT_USAGE.SNOWPARK_CONTAINER_SERVICES_HISTORY"


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
        return (f"Billed history not readable with the current role ({HISTORY_VIEW} needs IMPORTED PRIVILEGES on "
                "the SNOWFLAKE database: GRANT IMPORTED PRIVILEGES ON DATABASE SNOWFLAKE TO ROLE <role>).")
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
