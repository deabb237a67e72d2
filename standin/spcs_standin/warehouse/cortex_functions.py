"""``AI_COMPLETE`` and ``AI_EMBED`` for the warehouse: the stand-in's Cortex models (``cortex_engines.py``, the same
engines its Cortex REST endpoints use), run in process, one row at a time, as DuckDB scalar functions.

A row the model refuses raises, and so fails the whole statement it is in, as a failing function call fails a
Snowflake statement (the recipe then halves its chunk until the row is alone, ``recipes/cortex_run.py``). The
checks, with their sources:

- the model must be one of the stand-in's Cortex models, of the function's kind; Cortex answers an unknown model
  with ``unknown model "<name>"`` (Snowflake-Labs/sfquickstarts issue #2030, as ``cortex_app.py`` does);
- ``model_parameters``: ``temperature`` and ``top_p`` from 0 to 1, ``max_tokens`` from 1 to 8192 (default 4096), and
  ``guardrails`` a boolean (https://docs.snowflake.com/en/sql-reference/functions/ai_complete-single-string);
  inferred and stricter: any other key is refused, and a JSON null counts as absent (``OBJECT_CONSTRUCT`` drops a
  NULL value's key, see ``expressions.py``);
- a prompt over the model's context is refused (inferred, as the stand-in's REST endpoint and vLLM do); the
  reply is capped to what is left of the context; an embedding input over the model's sequence length is refused
  (inferred and stricter: the REST endpoint's model would truncate it).

``show_details => TRUE`` returns the detailed object: ``choices[0].messages`` (the reply), ``created``, ``model``
and ``usage`` (``prompt_tokens``, ``completion_tokens``, ``total_tokens``), the shape of COMPLETE's detailed output
(https://docs.snowflake.com/en/sql-reference/functions/complete-snowflake-cortex, "Returns"; inferred for AI_COMPLETE,
whose page describes show_details as the response with its metadata). A NULL prompt or input gives NULL (inferred).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from spcs_standin.cortex_engines import CORTEX_MODELS, DEFAULT_MAX_TOKENS, CortexModels
from spcs_standin.warehouse.ai_calls import COMPLETE_DETAILS_FUNCTION, COMPLETE_FUNCTION, EMBED_FUNCTION

MAX_TOKENS_LIMIT = 8192  # AI_COMPLETE's documented maximum for max_tokens
_PARAMETERS = ("temperature", "top_p", "max_tokens", "guardrails")


class CortexCallError(Exception):
    """A row the function refuses: the statement fails with this message."""


def check_model(name: str | None, kind: str, function: str) -> str:
    """The model's name, or CortexCallError when it is not a stand-in Cortex model of this kind."""
    spec = CORTEX_MODELS.get(name or "")
    if spec is None or spec.kind != kind:
        raise CortexCallError(f'{function}: unknown model "{name}"')
    return spec.name


def _parameters(text: str | None) -> dict[str, Any]:
    values = json.loads(text) if text is not None else {}
    if not isinstance(values, dict):
        raise CortexCallError("AI_COMPLETE: model_parameters must be an OBJECT.")
    values = {key: value for key, value in values.items() if value is not None}
    unknown = sorted(set(values) - set(_PARAMETERS))
    if unknown:
        raise CortexCallError(f"AI_COMPLETE: unknown model parameter(s) {', '.join(unknown)} "
                              f"(known: {', '.join(_PARAMETERS)}).")
    for key in ("temperature", "top_p"):
        if key in values and (isinstance(values[key], bool) or not isinstance(values[key], (int, float))
                              or not 0 <= values[key] <= 1):
            raise CortexCallError(f"AI_COMPLETE: {key} must be a number from 0 to 1, not {values[key]!r}.")
    tokens = values.get("max_tokens", DEFAULT_MAX_TOKENS)
    if isinstance(tokens, float) and tokens.is_integer():
        tokens = int(tokens)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= MAX_TOKENS_LIMIT:
        raise CortexCallError(f"AI_COMPLETE: max_tokens must be an integer from 1 to {MAX_TOKENS_LIMIT}, "
                              f"not {tokens!r}.")
    if "guardrails" in values and not isinstance(values["guardrails"], bool):
        raise CortexCallError("AI_COMPLETE: guardrails must be TRUE or FALSE.")
    return {**values, "max_tokens": tokens}


class CortexFunctions:
    """The functions one warehouse registers on its DuckDB connection."""

    def __init__(self, models: CortexModels) -> None:
        self.models = models
        self.calls = 0  # model calls made (rows answered or refused)

    def register(self, duck: Any) -> None:
        special = {"null_handling": "special", "side_effects": True}
        duck.create_function(COMPLETE_FUNCTION, self.complete, ["VARCHAR", "VARCHAR", "VARCHAR"], "VARCHAR",
                             **special)
        duck.create_function(COMPLETE_DETAILS_FUNCTION, self.complete_details, ["VARCHAR", "VARCHAR", "VARCHAR"],
                             "JSON", **special)
        duck.create_function(EMBED_FUNCTION, self.embed, ["VARCHAR", "VARCHAR"], "DOUBLE[]", **special)

    def complete(self, model: str | None, prompt: str | None, parameters: str | None) -> str | None:
        details = self._complete(model, prompt, parameters)
        return None if details is None else details["choices"][0]["messages"]

    def complete_details(self, model: str | None, prompt: str | None, parameters: str | None) -> str | None:
        details = self._complete(model, prompt, parameters)
        return None if details is None else json.dumps(details, ensure_ascii=False)

    def _complete(self, model: str | None, prompt: str | None, parameters: str | None) -> dict[str, Any] | None:
        name = check_model(model, "chat", "AI_COMPLETE")
        options = _parameters(parameters)
        if prompt is None:
            return None
        self.calls += 1
        engine = self.models.chat(name)
        prompt_ids = engine.prompt_ids([{"role": "user", "content": prompt}], None)
        room = engine.context_tokens - len(prompt_ids)
        if room <= 0:
            raise CortexCallError(f"AI_COMPLETE: the prompt has {len(prompt_ids)} tokens; {name} takes at most "
                                  f"{engine.context_tokens}.")
        pieces: list[str] = []
        end = engine.generate(prompt_ids, max_tokens=min(options["max_tokens"], room),
                              temperature=float(options.get("temperature", 0.0)),
                              top_p=float(options.get("top_p", 1.0)) or 1.0, stop_strings=[], emit=pieces.append,
                              cancelled=threading.Event())
        usage = {"completion_tokens": end.completion_tokens, "prompt_tokens": len(prompt_ids),
                 "total_tokens": len(prompt_ids) + end.completion_tokens}
        return {"choices": [{"messages": "".join(pieces)}], "created": int(time.time()), "model": name,
                "usage": usage}

    def embed(self, model: str | None, text: str | None) -> list[float] | None:
        check_model(model, "embed", "AI_EMBED")
        if text is None:
            return None
        self.calls += 1
        embedder = self.models.embedder()
        limit = int(embedder.model.max_seq_length)
        tokens = len(embedder.model.tokenizer(text)["input_ids"])
        if tokens > limit:
            raise CortexCallError(f"AI_EMBED: the input has {tokens} tokens; {model} takes at most {limit}.")
        vectors, _tokens = embedder.embed([text])
        return [float(value) for value in vectors[0]]
