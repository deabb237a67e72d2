"""DSS embedding component: a thin adapter over spcs_llm.spcs.dss_adapter.EmbeddingAdapter (all logic lives in
python-lib)."""

try:
    from dataiku.llm.python import BaseEmbeddingModel
except ImportError:  # older DSS builds keep the class in this module
    from dataiku.llm.python.custom.base_embedding_model import BaseEmbeddingModel

from spcs_llm.spcs.dss_adapter import EmbeddingAdapter


class SpcsEmbeddingModel(BaseEmbeddingModel):
    """Text embeddings from a Snowpark Container Services model service, in batched parallel requests."""

    def __init__(self):
        self.adapter = None

    def set_config(self, config, plugin_config):
        self.adapter = EmbeddingAdapter.from_config(config)

    def process(self, query, settings, trace):
        return self.adapter.process(query, settings, trace)
