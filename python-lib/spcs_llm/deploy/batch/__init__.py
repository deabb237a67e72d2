"""Bulk inference inside Snowflake: a deployed model over a whole table."""
