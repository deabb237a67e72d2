"""What every model client shares: the endpoint's transport and token source, the pricing rate, a token counter."""

from __future__ import annotations

from .auth import token_source_for
from .config import ChatModelConfig, EmbeddingModelConfig
from .cost import PricingRate
from .tokens import TokenCounter
from .transport import Transport


class ModelClient:
    """Base of ChatClient and EmbeddingClient. Thread-safe: the heavy state behind it is process-wide."""

    def __init__(self, config: ChatModelConfig | EmbeddingModelConfig):
        self.transport = Transport(config.endpoint, token_source_for(config.auth, config.endpoint.host))
        self.rate = PricingRate.for_config(config.cost)
        self.counter = TokenCounter.for_setting(config.tokenizer)
