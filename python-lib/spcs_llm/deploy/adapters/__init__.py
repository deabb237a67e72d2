"""LoRA adapters: registered against their base model and served beside it."""
