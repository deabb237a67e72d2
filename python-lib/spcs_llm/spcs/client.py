"""What every model client shares: the endpoint's transport and token source, the pricing rate, a token counter."""

from __future__ import annotations

from spcs_llm.core.auth import token_source_for
from spcs_llm.core.backend import BackendProfile
from spcs_llm.core.cost import PricingRate
from spcs_llm.core.tokens import TokenCounter
from spcs_llm.core.transport import Transport
from spcs_llm.spcs.config import ChatModelConfig, EmbeddingModelConfig

# SPCS's backend profile (``core/backend.py``), declared once: the typed errors' own fixes are written for an SPCS
# service (service roles, ingress hosts, service logs); a suspended service is waited for while it resumes
# ('Cold-start wait (s)'), and a 403 is retried for a while after a deploy, while routing to the service propagates.
SPCS_PROFILE = BackendProfile(name="spcs")


class ModelClient:
    """Base of ChatClient and EmbeddingClient. Thread-safe: the heavy state behind it is process-wide."""

    def __init__(self, config: ChatModelConfig | EmbeddingModelConfig):
        self.transport = Transport(config.endpoint, token_source_for(config.auth, config.endpoint.host),
                                   profile=SPCS_PROFILE)
        self.rate = PricingRate.for_config(config.cost)
        self.counter = TokenCounter.for_setting(config.tokenizer)
