"""The DSS LLM-component contract shared by the backends: messages, settings, texts, traces, usage."""
