"""``spcs-llm serve-adapters``: a base chat model and its LoRA adapters on one vLLM service, with the Dataiku settings.

Every argument is checked (adapter folders, stage paths, engine settings, hardware) before a Snowflake session is
opened. Re-running reuses the base version, the logged adapters and a live service, like ``deploy``. ``--dry-run``
prints the log_model / create_service calls and the settings instead, without opening a session.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from spcs_llm.cli.services import (
    DEPLOY_NAMES,
    add_debug_option,
    add_dry_run_option,
    add_engine_options,
    add_name_options,
    add_session_options,
    add_wait_options,
)
from spcs_llm.cli.services_run import check_non_negative, check_positive, engine_options_from, names_from, session_for
from spcs_llm.core.errors import ConfigurationError
from spcs_llm.deploy.names import is_identifier
from spcs_llm.deploy.services.catalog import CATALOG, catalog_entry, resolve_model


def serve_adapters_command(args: argparse.Namespace) -> int:
    from spcs_llm.deploy.adapters.registration import check_adapters, parse_adapter
    from spcs_llm.deploy.adapters.serving import adapter_service_spec, serve_adapters
    from spcs_llm.deploy.services.connection import connection_block
    from spcs_llm.deploy.services.deployer import Deployer, DeployOptions
    from spcs_llm.deploy.services.lifecycle import WaitSettings

    requests = [parse_adapter(text) for text in args.adapter]
    check_adapters(requests)
    if args.base_model_dir and not Path(args.base_model_dir, "config.json").is_file():
        raise ConfigurationError(f"{args.base_model_dir} holds no config.json, so it is not a model folder.",
                                 fix="Pass the folder of the base model's weights (as save_pretrained wrote it).")
    entry = catalog_entry(args.model)
    if entry is not None and entry.kind != "chat":
        raise ConfigurationError(f"LoRA adapters are for chat models; {entry.key} is an embedding model.",
                                 fix="Pass the chat model the adapters were trained on.")
    spec = adapter_service_spec(resolve_model(
        args.model, kind=None if entry else "chat", family=args.family, gated=args.gated,
        params_billion=args.params_billion, revision=args.revision, instance_family=args.instance_family,
        gpu_count=args.gpus,
        min_instances=args.min_instances, max_instances=args.max_instances, model_name=args.model_name,
        engine=engine_options_from(args, engine="vllm"),
    ), args.service_name)
    options = DeployOptions(
        version_name=args.version.upper(), replace_service=args.replace, caller_role=args.caller_role,
        external_access=not args.no_external_access,
        wait=WaitSettings(timeout_s=args.timeout, poll_interval_s=args.poll_interval),
    )
    check_positive(args, "--timeout", "--dollars-per-credit")
    check_non_negative(args, "--poll-interval")
    if not is_identifier(args.adapter_version) or not is_identifier(args.version):
        raise ConfigurationError(f"Versions {args.version!r} / {args.adapter_version!r} must be plain identifiers.",
                                 fix="Pass --version / --adapter-version like V1 (letters, digits, _).")
    names = names_from(args)
    if args.dry_run:
        from spcs_llm.deploy.preview import adapters_preview

        print(adapters_preview(spec, names, options, requests, adapter_version=args.adapter_version.upper(),
                               dollars_per_credit=args.dollars_per_credit))
        return 0
    deployer = Deployer(session_for(args), names)
    result = serve_adapters(deployer, spec, requests, options, adapter_version=args.adapter_version.upper(),
                            base_model_dir=args.base_model_dir)
    for note in result.notes:
        print(f"Note: {note}", file=sys.stderr)
    blocks = [connection_block(model, dollars_per_credit=args.dollars_per_credit)
              for model in (result.base, *result.adapters)]
    print("\n\n".join(blocks))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve-adapters", help="serve a chat model with its LoRA adapters on vLLM (idempotent); prints the settings",
        description="Logs each adapter pinned to the base model version and serves base + adapters on one vLLM "
                    "service: one Dataiku model per adapter, plus the base. Where the account has no LoRA adapter "
                    "support, each adapter is merged into the base weights (needs --base-model-dir) and served as a "
                    "model of its own.")
    chat_models = ", ".join(key for key, spec in CATALOG.items() if spec.kind == "chat")
    parser.add_argument("model", help=f"base chat model: catalog key ({chat_models}) or a Hugging Face id")
    parser.add_argument("--adapter", action="append", required=True, metavar="NAME=FOLDER",
                        help="an adapter: NAME (what Dataiku sends as the model) = a local folder with "
                             "adapter_config.json, or a stage folder @DB.SCHEMA.STAGE/path (repeatable)")
    parser.add_argument("--base-model-dir", help="local folder of the base weights, to merge adapters into where "
                                                 "the account has no LoRA adapter support")
    parser.add_argument("--adapter-version", default="V1", help="registry version of each adapter (default V1)")
    model = parser.add_argument_group("base model (catalog values or Hub metadata, unless given)")
    model.add_argument("--family", help="chat family (auto, llama2, zephyr, mistral, phi2, falcon, chatml, raw)")
    model.add_argument("--gated", dest="gated", action="store_true", default=None, help="the Hub repo is gated")
    model.add_argument("--not-gated", dest="gated", action="store_false", help="the Hub repo is open")
    model.add_argument("--params-billion", type=float, help="parameter count in billions (memory fit)")
    model.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    model.add_argument("--instance-family", help="instance family the model is sized for (checked against the pool)")
    model.add_argument("--gpus", type=int, help="GPUs per instance")
    model.add_argument("--min-instances", type=int, help="0 lets the service suspend when idle")
    model.add_argument("--max-instances", type=int)
    add_engine_options(parser, vllm_only=True)
    service = parser.add_argument_group("registry and service")
    service.add_argument("--model-name", help="registry name of the base model")
    service.add_argument("--version", default="V1", help="registry version of the base model (default V1)")
    service.add_argument("--service-name", help="service name (default <MODEL>_LORA_SVC)")
    service.add_argument("--replace", action="store_true", help="drop and recreate the service (e.g. new adapters)")
    service.add_argument("--caller-role", help="role granted the service role (default: --user-role)")
    service.add_argument("--no-external-access", action="store_true", help="no egress integration for the build")
    add_wait_options(service)
    add_dry_run_option(parser)
    add_name_options(parser, DEPLOY_NAMES)
    add_session_options(parser)
    add_debug_option(parser)
    parser.set_defaults(handler=serve_adapters_command)
