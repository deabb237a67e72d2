"""Helpers for the Cortex connector's unit tests: account URLs, clients on a PAT preset, SSE bodies."""


from spcs_llm.cortex.client import CortexChatClient, CortexEmbeddingClient
from spcs_llm.cortex.config import parse_cortex_chat_config, parse_cortex_embedding_config

ACCOUNT_URL = "https://myorg-myacct.snowflakecomputing.com"
CHAT_URL = f"{ACCOUNT_URL}/api/v2/cortex/v1/chat/completions"
EMBED_URL = f"{ACCOUNT_URL}/api/v2/cortex/inference:embed"
PAT = "cortex-test-pat-0123456789abcdef"


def pat_config(**extra):
    return {"auth_type": "service", "service_preset": {"service_auth": "pat", "pat": PAT, "account_url": ACCOUNT_URL},
            **extra}


def chat_client(fake_time=None, **extra) -> CortexChatClient:
    config = parse_cortex_chat_config(pat_config(**{"model": "claude-3-5-sonnet", **extra}))
    return CortexChatClient(config, sleep=fake_time.sleep if fake_time else (lambda _s: None))


def embedding_client(**extra) -> CortexEmbeddingClient:
    return CortexEmbeddingClient(parse_cortex_embedding_config(pat_config(**extra)), sleep=lambda _s: None)



def sse(*events: str) -> str:
    return "".join(f"data: {event}\n\n" for event in events) + "data: [DONE]\n\n"
