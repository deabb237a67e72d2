"""Cortex fine-tuning (SNOWFLAKE.CORTEX.FINETUNE) from a Snowflake table."""
