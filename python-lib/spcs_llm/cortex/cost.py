"""What a Cortex request costs: credits per million tokens, per model, from a shipped and dated table.

Cortex bills tokens, not busy time: chat models bill input and output tokens (at rates that may differ), embedding
models bill input tokens only (Snowflake docs, "Cost considerations for Cortex AI Functions"). The model's own
rates ('Input / Output credits per million tokens') override the table. A model in neither has no known price:
its cost is reported as unknown, never as 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from spcs_llm.core.redaction import get_logger
from spcs_llm.cortex.config import CortexCostConfig

LOG = get_logger(__name__)

# Credits per million (input, output) tokens. Inferred: transcribed from a third-party copy of Snowflake's Service
# Consumption Table (AI_COMPLETE / AI_EMBED rows) read on this date, not from the PDF itself; prices change, so
# check them against https://www.snowflake.com/legal-files/CreditConsumptionTable.pdf and override per model.
CORTEX_RATES_AS_OF = "2026-12-04"
CORTEX_CREDITS_PER_MILLION: dict[str, tuple[float, float]] = {
    "claude-3-5-sonnet": (1.50, 7.50),
    "claude-3-7-sonnet": (1.50, 7.50),
    "claude-4-sonnet": (1.50, 7.50),
    "claude-4-opus": (7.50, 37.50),
    "openai-gpt-4.1": (1.00, 4.00),
    "openai-gpt-5": (0.69, 5.50),
    "openai-gpt-5-mini": (0.14, 1.10),
    "llama3.1-8b": (0.03, 0.03),
    "llama3.1-70b": (0.29, 0.29),
    "snowflake-llama-3.3-70b": (0.29, 0.29),
    "snowflake-llama-3.1-405b": (0.96, 0.96),
    "mistral-7b": (0.05, 0.05),
    "mixtral-8x7b": (0.11, 0.11),
    "mistral-large2": (1.00, 3.00),
    "snowflake-arctic": (0.84, 0.84),
    "deepseek-r1": (0.55, 2.19),
    "e5-base-v2": (0.03, 0.0),
    "snowflake-arctic-embed-m": (0.03, 0.0),
    "snowflake-arctic-embed-m-v1.5": (0.03, 0.0),
    "snowflake-arctic-embed-l-v2.0": (0.05, 0.0),
}


@dataclass(frozen=True)
class CortexRate:
    input_credits_per_million: float
    output_credits_per_million: float
    source: str  # "model settings" or "table as of <date>"


@dataclass(frozen=True)
class CostEstimate:
    """Dollars for one call, or None with the reason the price is unknown."""

    dollars: float | None
    credits: float | None
    unknown_reason: str = ""


class CortexPricing:
    """Turns exact token usage into credits and dollars for one configured model."""

    def __init__(self, model: str, cost: CortexCostConfig,
                 table: dict[str, tuple[float, float]] = CORTEX_CREDITS_PER_MILLION):
        self.model = model
        self.dollars_per_credit = cost.dollars_per_credit
        self.rate = self._rate(model, cost, table)
        if self.rate is None:
            LOG.warning("No price is known for Cortex model %s (table as of %s): its cost is reported as unknown. "
                        "Set 'Input / Output credits per million tokens' on the model.", model, CORTEX_RATES_AS_OF)

    @staticmethod
    def _rate(model: str, cost: CortexCostConfig, table: dict[str, tuple[float, float]]) -> CortexRate | None:
        tabled = table.get(model.lower())
        if cost.input_credits_per_million is not None or cost.output_credits_per_million is not None:
            input_rate = cost.input_credits_per_million
            output_rate = cost.output_credits_per_million
            if input_rate is None:
                input_rate = tabled[0] if tabled else None
            if output_rate is None:
                output_rate = tabled[1] if tabled else input_rate
            if input_rate is not None:
                return CortexRate(input_rate, output_rate if output_rate is not None else input_rate, "model settings")
        if tabled:
            return CortexRate(tabled[0], tabled[1], f"table as of {CORTEX_RATES_AS_OF}")
        return None

    def estimate(self, prompt_tokens: int, completion_tokens: int = 0) -> CostEstimate:
        if self.rate is None:
            return CostEstimate(None, None, f"no price is known for Cortex model {self.model!r}")
        credits = (prompt_tokens * self.rate.input_credits_per_million
                   + completion_tokens * self.rate.output_credits_per_million) / 1_000_000
        return CostEstimate(dollars=credits * self.dollars_per_credit, credits=credits)
