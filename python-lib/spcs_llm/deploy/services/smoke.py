"""After deploying: call the service exactly as DSS will — the plugin's own adapters, the printed settings, a PAT.

A programmatic access token of a user holding the caller role is the least a notebook needs to reach the public
endpoint; without one the smoke test is skipped with a note on how to get one.
"""

from __future__ import annotations

from dataclasses import dataclass

from spcs_llm.deploy.services.connection import DeployedModel, connection_settings
from spcs_llm.spcs.dss_adapter import ChatAdapter, EmbeddingAdapter

SMOKE_PROMPT = "Reply with one short friendly sentence."


@dataclass(frozen=True)
class SmokeResult:
    model: str
    ok: bool
    detail: str

    def text(self) -> str:
        return f"{'OK' if self.ok else 'FAILED'} {self.model}: {self.detail}"


def smoke_test(deployed: DeployedModel, pat: str | None) -> SmokeResult:
    """One chat completion or one embedding through the deployed endpoint; errors are reported, not raised."""
    key = deployed.spec.key
    if not pat:
        return SmokeResult(key, False, f"skipped: set a programmatic access token of a user holding role "
                           f"{deployed.caller_role} (ALTER USER ... ADD PROGRAMMATIC ACCESS TOKEN) to run it")
    settings = connection_settings(deployed, auth_type="service")
    config = {**settings, "service_preset": {"service_auth": "pat", "pat": pat}}
    try:
        if deployed.spec.kind == "chat":
            reply = ChatAdapter.from_config(config).process(
                {"messages": [{"role": "user", "content": SMOKE_PROMPT}]}, {"maxOutputTokens": 40}, None)
            return SmokeResult(key, True, f"replied {reply['text']!r} ({reply.get('totalTokens', '?')} tokens)")
        answer = EmbeddingAdapter.from_config(config).process({"queries": [{"text": SMOKE_PROMPT}]}, {}, None)
        vector = answer.get("embedding") or answer["responses"][0]["embedding"]
        return SmokeResult(key, True, f"returned a {len(vector)}-dimensional vector")
    except Exception as exc:  # noqa: BLE001 - a smoke test reports any failure as its result
        return SmokeResult(key, False, str(exc))
