"""What the compute pools cost right now: state, billed nodes and credits per hour (spcs-protocol.md §E.1).

A pool bills per node while IDLE, ACTIVE, STOPPING or RESIZING, and nothing while STARTING or SUSPENDED. So
``spcs-llm status`` can answer the question users ask after a demo: "is anything still burning credits?"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..cost import instance_family_rates

BILLED_STATES = ("IDLE", "ACTIVE", "STOPPING", "RESIZING")  # §E.1 [docs D5]


@dataclass(frozen=True)
class PoolBilling:
    pool: str
    state: str
    instance_family: str
    billed_nodes: int
    credits_per_node_hour: float | None  # None: the family is not in resource/instance_families.json

    @property
    def credits_per_hour(self) -> float | None:
        """Credits the pool burns per hour in its current state (0 while suspended)."""
        if self.billed_nodes == 0:
            return 0.0
        if self.credits_per_node_hour is None:
            return None
        return self.billed_nodes * self.credits_per_node_hour

    def as_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "state": self.state, "instance_family": self.instance_family,
                "billed_nodes": self.billed_nodes, "credits_per_hour": self.credits_per_hour}


def pool_billing(row: dict[str, Any]) -> PoolBilling:
    """Read one ``SHOW COMPUTE POOLS`` row into what it costs now."""
    state = str(row.get("state") or "UNKNOWN").upper()
    family = str(row.get("instance_family") or "").upper()
    # [inf] The active_nodes / idle_nodes columns are from Snowflake's SHOW COMPUTE POOLS docs, not from
    # spcs-protocol.md; a row without them counts min_nodes, which a running pool always has.
    if row.get("active_nodes") is not None or row.get("idle_nodes") is not None:
        nodes = int(row.get("active_nodes") or 0) + int(row.get("idle_nodes") or 0)
    else:
        nodes = int(row.get("min_nodes") or 1)
    return PoolBilling(
        pool=str(row["name"]),
        state=state,
        instance_family=family,
        billed_nodes=nodes if state in BILLED_STATES else 0,
        credits_per_node_hour=instance_family_rates().get(family),
    )
