"""The stand-in's LoRA service: the tiny chat model and one fine-tuned adapter behind one ingress.

This is what ``ModelVersion.create_service(..., adapters={"<alias>": adapter_version})`` on the vLLM engine
serves (snowml 2.6 ``model_version_impl.py`` ``create_service`` docstring: "mapping from service alias
(``model =>`` / REST ``params.model``) to adapter ModelVersion objects"). The OpenAI-chat signature carries
that choice as the ``model`` param (``ParamSpec(name="model", dtype=STRING, default_value=None)`` in
``snowflake/ml/model/openai_signatures.py``); snowml's own Python wrapper (``_openai_chat_wrapper.py``) ignores
it, so adapters are served by the vLLM engine only, which is why this service answers like ``chat_vllm``.

Routing: no ``model`` (or an empty one, or the base model's name) → the base model; the adapter's alias → the
adapter, and the answer's ``model`` field names it (as vLLM's OpenAI server does). Inferred: what SPCS answers
for an alias no adapter was attached under is undocumented (vLLM itself answers 404 "model does not exist");
the stand-in refuses it with a 400, the stricter reading for a client (not retried, surfaced).

The adapter is trained at first use with ``spcs_llm.deploy.finetune.training.finetune_lora`` (the function an ML job
runs) on one prompt/response pair, and cached like the packaged models.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spcs_llm.deploy.finetune.training import LoraSettings, TrainingExample, finetune_lora
from spcs_standin.cache import build_once, cache_root
from spcs_standin.envelopes import EnvelopeError
from spcs_standin.packaging import OWN_TEMPLATE, ChatTemplate, PackagedModel, load_chat_pipeline_model
from spcs_standin.settings import BUILT_IN_ADAPTER
from spcs_standin.tinychat import RECIPE_VERSION, SYSTEM_PROMPT, chat_model_dir
from spcs_standin.vllm_engine import VllmChatEngine

# The alias the adapter is attached under: what a client sends as the `model` param to reach it.
ADAPTER_ALIAS = BUILT_IN_ADAPTER
# The pair the adapter learns. Its answer uses only words the tiny model already says in its canned replies:
# the tiny model's other tokens have small, barely trained embeddings that a frozen-embedding LoRA cannot lift.
FINETUNE_EXAMPLE = TrainingExample(instruction="Name a color.", output="Blue is a color of France.")
FINETUNE_SETTINGS = LoraSettings(learning_rate=1e-2, max_steps=200, seed=0, system_prompt=SYSTEM_PROMPT,
                                 stop_margin=4.0)


TRAINING_REPORT = "training.json"
# Bumped when what a build writes changes, so an older cached adapter folder is never mistaken for a new one.
BUILD_VERSION = "build2"


@dataclass(frozen=True)
class TrainingReport:
    """How the cached adapter was trained, for the demo to show."""

    steps: int
    first_loss: float
    last_loss: float
    seconds: float


def adapter_dir() -> Path:
    """The folder of the trained adapter (``adapter_config.json`` + weights), training it first if needed."""
    recipe = hashlib.sha256(f"{FINETUNE_EXAMPLE}\0{FINETUNE_SETTINGS}".encode()).hexdigest()[:10]
    target = cache_root() / "adapters" / f"{ADAPTER_ALIAS}-{BUILD_VERSION}-{RECIPE_VERSION}-{recipe}"
    return build_once(target, TRAINING_REPORT, _train)


def training_report() -> TrainingReport:
    """The report of the adapter's training run (training it first if needed)."""
    return TrainingReport(**json.loads((adapter_dir() / TRAINING_REPORT).read_text(encoding="utf-8")))


def _train(folder: Path) -> None:
    result = finetune_lora(chat_model_dir(), [FINETUNE_EXAMPLE], folder, FINETUNE_SETTINGS)
    report = TrainingReport(len(result.losses), result.losses[0], result.losses[-1], result.seconds)
    (folder / TRAINING_REPORT).write_text(json.dumps(asdict(report)), encoding="utf-8")


def load_lora_chat(extra_adapters: Mapping[str, str] | None = None) -> PackagedModel:
    """The packaged tiny chat pipeline served raw as the base, plus one copy per adapter wearing it: the built-in
    one and any ``extra_adapters`` (alias → folder of a PEFT adapter of the tiny chat model)."""
    from peft import PeftModel

    base = load_chat_pipeline_model(ChatTemplate(OWN_TEMPLATE), as_custom_model=False)
    folders = {ADAPTER_ALIAS: str(adapter_dir()), **dict(extra_adapters or {})}
    adapters = {}
    for alias, folder in folders.items():
        adapted = load_chat_pipeline_model(ChatTemplate(OWN_TEMPLATE), as_custom_model=False).model
        adapted.model = PeftModel.from_pretrained(adapted.model, folder, adapter_name=alias)
        adapters[alias] = VllmChatEngine(adapted)
    return PackagedModel(LoraRouter(VllmChatEngine(base.model), adapters), base.signatures)


class LoraRouter:
    """Picks the base engine or an adapter's engine by the request's ``model`` param."""

    def __init__(self, base: VllmChatEngine, adapters: dict[str, VllmChatEngine]) -> None:
        self.base = base
        self.adapters = adapters

    def complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("model")
        if not name or name == self.base.model_name:
            return self.base.complete(messages, params)
        engine = self.adapters.get(name)
        if engine is None:
            # vLLM's wording, not "Input data malformed": the rows fit the signature, the name does not exist.
            raise EnvelopeError(f"The model `{name}` does not exist. This service serves its base model and the "
                                f"adapter(s): {', '.join(sorted(self.adapters))}.")
        return {**engine.complete(messages, params), "model": name}
