"""Snowflake Cortex as a second backend: chat completions (streaming, tool calls) and embeddings over the Cortex
REST API, sharing the SPCS connector's presets, token cache, transport, retries and limiter."""
