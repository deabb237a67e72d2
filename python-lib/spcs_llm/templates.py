"""INTERFACE STUB — to be implemented. Chat formats for legacy text-generation services."""
