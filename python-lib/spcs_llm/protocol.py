"""INTERFACE STUB — to be implemented. SPCS model-service envelopes and row shapes (spcs-protocol.md §C)."""
