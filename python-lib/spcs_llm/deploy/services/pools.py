"""What the compute pools cost: now, per day and month if nothing changes, and per wake-up.

A pool bills per node while IDLE, ACTIVE, STOPPING or RESIZING, and nothing while STARTING or SUSPENDED
(Snowflake's "Compute pool cost" docs). The per-call ``estimatedCost`` the plugin reports is each call's share of
*busy* time; this is the other number — what the pools bill whether or not anyone calls them — so that
``spcs-llm status`` can answer the question users ask after a demo: "is anything still burning credits?"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spcs_llm.core.cost import instance_family_rates

BILLED_STATES = ("IDLE", "ACTIVE", "STOPPING", "RESIZING")
HOURS_PER_DAY = 24.0
HOURS_PER_MONTH = 730.0  # 365 * 24 / 12
# SPCS compute bills at least five minutes each time a node starts (Snowflake Service Consumption Table,
# billing rules), and a pool keeps its nodes for AUTO_SUSPEND_SECS after the last service stops.
MINIMUM_BILLED_SECS = 300


@dataclass(frozen=True)
class PoolBilling:
    pool: str
    state: str
    instance_family: str
    billed_nodes: int
    credits_per_node_hour: float | None  # None: the family is not in resource/instance_families.json
    min_nodes: int = 1
    auto_suspend_secs: int | None = None  # None: unknown; 0: the pool never suspends by itself

    @property
    def credits_per_hour(self) -> float | None:
        """Credits the pool burns per hour in its current state (0 while suspended)."""
        if self.billed_nodes == 0:
            return 0.0
        if self.credits_per_node_hour is None:
            return None
        return self.billed_nodes * self.credits_per_node_hour

    @property
    def credits_per_resume(self) -> float | None:
        """The least one wake-up costs: min_nodes kept for max(auto-suspend delay, 5 min) after the last call."""
        if self.credits_per_node_hour is None or not self.auto_suspend_secs:
            return None
        return self.min_nodes * self.credits_per_node_hour * max(self.auto_suspend_secs, MINIMUM_BILLED_SECS) / 3600.0

    @property
    def never_suspends(self) -> bool:
        return self.auto_suspend_secs == 0

    def as_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "state": self.state, "instance_family": self.instance_family,
                "billed_nodes": self.billed_nodes, "credits_per_hour": self.credits_per_hour,
                "min_nodes": self.min_nodes, "auto_suspend_secs": self.auto_suspend_secs,
                "credits_per_resume": self.credits_per_resume}


@dataclass(frozen=True)
class CostProjection:
    """What the pools would cost per day and per month if they stayed as they are now."""

    credits_per_hour: float
    dollars_per_credit: float
    unpriced_pools: tuple[str, ...]

    @property
    def credits_per_day(self) -> float:
        return self.credits_per_hour * HOURS_PER_DAY

    @property
    def credits_per_month(self) -> float:
        return self.credits_per_hour * HOURS_PER_MONTH

    def dollars(self, credits: float) -> float:
        return credits * self.dollars_per_credit


def project(pools: list[PoolBilling], dollars_per_credit: float) -> CostProjection:
    known = [pool.credits_per_hour for pool in pools if pool.credits_per_hour is not None]
    return CostProjection(
        credits_per_hour=sum(known),
        dollars_per_credit=dollars_per_credit,
        unpriced_pools=tuple(pool.pool for pool in pools if pool.credits_per_hour is None),
    )


def pool_billing(row: dict[str, Any], rates: dict[str, float] | None = None) -> PoolBilling:
    """Read one ``SHOW COMPUTE POOLS`` row into what it costs; ``rates`` adds or overrides family rates."""
    state = str(row.get("state") or "UNKNOWN").upper()
    family = str(row.get("instance_family") or "").upper()
    # The active_nodes / idle_nodes columns are from Snowflake's SHOW COMPUTE POOLS docs; a row without them
    # counts min_nodes, which a running pool always has.
    if row.get("active_nodes") is not None or row.get("idle_nodes") is not None:
        nodes = int(row.get("active_nodes") or 0) + int(row.get("idle_nodes") or 0)
    else:
        nodes = int(row.get("min_nodes") or 1)
    suspend = row.get("auto_suspend_secs")
    return PoolBilling(
        pool=str(row["name"]),
        state=state,
        instance_family=family,
        billed_nodes=nodes if state in BILLED_STATES else 0,
        credits_per_node_hour={**instance_family_rates(), **(rates or {})}.get(family),
        min_nodes=int(row.get("min_nodes") or 1),
        auto_suspend_secs=None if suspend is None else int(suspend),
    )


def billing_report(pools: list[PoolBilling], dollars_per_credit: float) -> str:
    """One line per pool, then the projection: what bills now, per day/month if left so, and per wake-up."""
    if not pools:
        return "No compute pools found."
    lines = ["", f"{'compute pool':<28} {'state':<10} {'family':<22} {'nodes':>5} {'credits/h':>9} "
                 f"{'auto-suspend':>12} {'per wake-up':>11}"]
    for pool in pools:
        rate = "?" if pool.credits_per_hour is None else f"{pool.credits_per_hour:.2f}"
        suspend = "?" if pool.auto_suspend_secs is None else ("never" if pool.never_suspends else
                                                                f"{pool.auto_suspend_secs} s")
        wake = "-" if pool.credits_per_resume is None else f"{pool.credits_per_resume:.3f} cr"
        lines.append(f"{pool.pool:<28} {pool.state:<10} {pool.instance_family:<22} {pool.billed_nodes:>5} "
                     f"{rate:>9} {suspend:>12} {wake:>11}")
    projection = project(pools, dollars_per_credit)
    money = projection.dollars
    lines.append(
        f"Billing now: {projection.credits_per_hour:.2f} credits/h (about ${money(projection.credits_per_hour):.2f}/h "
        f"at ${dollars_per_credit:g}/credit)"
        + ("" if not projection.unpriced_pools else
           f"; not priced: {', '.join(projection.unpriced_pools)} (family not in the table; pass --credits-per-hour)"))
    if projection.credits_per_hour:
        lines.append(
            f"If left as it is: {projection.credits_per_day:.1f} credits/day "
            f"(${money(projection.credits_per_day):,.0f}), "
            f"{projection.credits_per_month:,.0f} credits/month (${money(projection.credits_per_month):,.0f}). "
            "Idle nodes bill like busy ones; per-call costs in DSS count busy time only.")
        lines.append("Suspend with `ALTER COMPUTE POOL <pool> SUSPEND` or stop everything with `spcs-llm teardown`.")
    if any(pool.never_suspends for pool in pools):
        lines.append("A pool with auto-suspend 'never' bills around the clock: "
                     "ALTER COMPUTE POOL <pool> SET AUTO_SUSPEND_SECS = 600;")
    lines.append("Each wake-up of a suspended pool bills its minimum nodes until the auto-suspend delay "
                 "(at least 5 minutes) after the last call.")
    return "\n".join(lines)
