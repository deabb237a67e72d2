"""DSS embedding component for Snowflake Cortex: a thin adapter over spcs_llm.cortex.dss_adapter."""

try:
    from dataiku.llm.python import BaseEmbeddingModel
except ImportError:  # older DSS builds keep the class in this module
    from dataiku.llm.python.custom.base_embedding_model import BaseEmbeddingModel

from spcs_llm.cortex.dss_adapter import CortexEmbeddingAdapter


class CortexEmbeddingModel(BaseEmbeddingModel):
    """Text embeddings from a Snowflake Cortex embedding model."""

    def __init__(self):
        self.adapter = None

    def set_config(self, config, plugin_config):
        self.adapter = CortexEmbeddingAdapter.from_config(config)

    def process(self, query, settings, trace):
        return self.adapter.process(query, settings, trace)
