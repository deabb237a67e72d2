"""The Snowpark Container Services backend: chat and embedding clients for model services, and their DSS adapters."""
