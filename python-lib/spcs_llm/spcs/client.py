"""What every model client shares: the endpoint's transport and token source, the pricing rate, a token counter."""

from __future__ import annotations

from spcs_llm.core.auth import token_source_for
from spcs_llm.core.cost import PricingRate
from spcs_llm.core.tokens import TokenCounter
from spcs_llm.core.transport import Transport
from spcs_llm.spcs.config import ChatModelConfig, EmbeddingModelConfig


class ModelClient:
    """Base of ChatClient and EmbeddingClient. Thread-safe: the heavy state behind it is process-wide."""

    def __init__(self, config: ChatModelConfig | EmbeddingModelConfig):
        self.transport = Transport(config.endpoint, token_source_for(config.auth, config.endpoint.host))
        self.rate = PricingRate.for_config(config.cost)
        self.counter = TokenCounter.for_setting(config.tokenizer)
