"""A faithful local stand-in for Snowflake + SPCS: account (OAuth, sessions, token exchange) and model-service
ingresses serving real small models, with fault injection. Start it with ``python -m spcs_standin`` or
``spcs-llm local``; drive it from Python with ``spcs_standin.stack.LocalStack``.
"""
