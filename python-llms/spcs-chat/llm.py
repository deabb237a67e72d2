"""DSS chat component: a thin adapter over spcs_llm.spcs.dss_adapter.ChatAdapter (all logic lives in python-lib)."""

from dataiku.llm.python import BaseLLM

from spcs_llm.spcs.dss_adapter import ChatAdapter


class SpcsChatModel(BaseLLM):
    """Chat completion against a Snowpark Container Services model service."""

    def __init__(self):
        self.adapter = None

    def set_config(self, config, plugin_config):
        self.adapter = ChatAdapter.from_config(config)

    def process(self, query, settings, trace):
        return self.adapter.process(query, settings, trace)

    def process_stream(self, query, settings, trace):
        yield from self.adapter.process_stream(query, settings, trace)
