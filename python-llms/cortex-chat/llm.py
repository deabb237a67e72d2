"""DSS chat component for Snowflake Cortex: a thin adapter over spcs_llm.cortex.dss_adapter (logic in python-lib)."""

from dataiku.llm.python import BaseLLM

from spcs_llm.cortex.dss_adapter import CortexChatAdapter


class CortexChatModel(BaseLLM):
    """Chat completion, token streaming and tool calls with a Snowflake Cortex model."""

    def __init__(self):
        self.adapter = None

    def set_config(self, config, plugin_config):
        self.adapter = CortexChatAdapter.from_config(config)

    def process(self, query, settings, trace):
        return self.adapter.process(query, settings, trace)

    def process_stream(self, query, settings, trace):
        yield from self.adapter.process_stream(query, settings, trace)
