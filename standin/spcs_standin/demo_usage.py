"""The demo's closing table: what each DSS call reported (tokens, cost) and its trace recorded (retries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.cortex.config import CortexCostConfig


@dataclass
class UsageRow:
    call: str
    rows: int
    prompt_tokens: int
    completion_tokens: int
    retries: int
    cost: float
    estimated: bool
    billed: str  # what the cost is computed from: SPCS "busy time" or Cortex "tokens"


class UsageTable:
    """Collects what each DSS call reported (tokens, cost) and what its trace recorded (retries)."""

    def __init__(self) -> None:
        self.rows: list[UsageRow] = []

    def record(self, call: str, answer: dict[str, Any], trace: SpanBuilder, rows: int = 1,
               billed: str = "busy time") -> None:
        attributes = trace.to_dict()["children"][-1]["attributes"]
        self.rows.append(UsageRow(call, rows, answer.get("promptTokens", 0), answer.get("completionTokens", 0),
                                  retries_of(attributes), float(answer.get("estimatedCost", 0.0)),
                                  bool(answer.get("tokenCountsAreEstimated")), billed))

    def print(self) -> None:
        print(f"\n{'call':<44}{'rows':>6}{'prompt tok':>12}{'output tok':>12}{'retries':>9}{'est. cost $':>14}"
              f"  billed by")
        for row in self.rows:
            flag = "~" if row.estimated else " "
            print(f"{row.call:<44}{row.rows:>6}{row.prompt_tokens:>11}{flag}{row.completion_tokens:>11}{flag}"
                  f"{row.retries:>9}{row.cost:>14.8f}  {row.billed}")
        total = UsageRow("total", *(sum(getattr(r, f) for r in self.rows) for f in
                                    ("rows", "prompt_tokens", "completion_tokens", "retries", "cost")), False, "")
        print(f"{total.call:<44}{total.rows:>6}{total.prompt_tokens:>12}{total.completion_tokens:>12}"
              f"{total.retries:>9}{total.cost:>14.8f}")
        print(f"{len(self.rows)} calls. '~' marks token counts estimated without the model's tokenizer. Busy time: "
              "the call's share of the SPCS compute pool's busy time at its instance family's rate. Tokens: Cortex "
              f"credits per million input / output tokens, at ${CortexCostConfig().dollars_per_credit:.2f} a credit.")


def retries_of(attributes: dict[str, Any]) -> int:
    """Retries a call's trace recorded: the SPCS components count them; the Cortex ones count attempts per request."""
    if "cortex.attempts" in attributes:
        return max(0, int(attributes["cortex.attempts"]) - int(attributes.get("cortex.requests", 1)))
    return int(attributes.get("spcs.retries", 0))
