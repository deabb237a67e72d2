"""spcs-llm: Dataiku LLM Mesh connectors for models served from Snowflake Snowpark Container Services."""

__version__ = "0.1.0"
