"""INTERFACE STUB — to be implemented. Exact token counts from usage, else a tokenizer, else an estimate."""
