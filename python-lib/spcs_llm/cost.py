"""INTERFACE STUB — to be implemented. Credit-cost accounting (design.md "Cost = share of busy time").

- ``instance_family_rates()``: the credits/hour table shipped in resource/instance_families.json.
- ``PricingRate.for_config(cost: CostConfig)``: credits/hour (override or table) × dollars/credit.
- ``BusyTimeLedger``: one per endpoint per process (``ledger_for(base_url)``). ``with ledger.track() as share:``
  brackets one in-flight HTTP request; between any two events the elapsed wall time is divided equally among
  requests then in flight; ``share.seconds`` is final after exit. Sum of shares == busy time.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import CostConfig


@dataclass(frozen=True)
class PricingRate:
    credits_per_hour: float
    dollars_per_credit: float

    def dollars(self, busy_seconds: float) -> float:
        return busy_seconds * self.credits_per_hour / 3600.0 * self.dollars_per_credit

    @classmethod
    def for_config(cls, cost: CostConfig) -> "PricingRate":
        raise NotImplementedError
