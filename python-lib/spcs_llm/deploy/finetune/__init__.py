"""LoRA fine-tuning of a catalog chat model as a Snowflake ML job."""
