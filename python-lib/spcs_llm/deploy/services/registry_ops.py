"""Model versions in the Snowflake registry: build the Hugging Face wrapper, then reuse, replace or log a version.

Only the current snowflake-ml API is used: ``Registry``, ``log_model`` with
``huggingface.TransformersPipeline`` / ``huggingface.SentenceTransformer``. snowflake-ml is imported lazily
because it takes about a second, which nothing but a deployment should pay.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spcs_llm.core.errors import ConfigurationError, DeploymentError
from spcs_llm.core.redaction import get_logger
from spcs_llm.deploy.dependencies import require
from spcs_llm.deploy.names import DeploymentNames
from spcs_llm.deploy.services.catalog import ModelSpec
from spcs_llm.deploy.services.lifecycle import services_of
from spcs_llm.spcs.templates import template_source

log = get_logger(__name__)

# Files needed to serve a transformers model from a local snapshot; skips duplicate *.bin weights (inferred).
SNAPSHOT_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.py")
TARGET_PLATFORMS = ["SNOWPARK_CONTAINER_SERVICES"]


@dataclass(frozen=True)
class VersionOutcome:
    model_version: Any
    reused: bool


def open_registry(session: Any, names: DeploymentNames) -> Any:
    Registry = require("snowflake.ml.registry").Registry  # noqa: N806 - the class, imported lazily

    try:
        return Registry(session, database_name=names.database, schema_name=names.schema)
    except ValueError as exc:  # raised for a missing database or schema
        raise DeploymentError(
            f"The model registry {names.schema_fqn} cannot be opened: {exc}",
            fix="Run the SQL from `spcs-llm setup-sql` (it creates the database and schema), or pass "
            "--database/--schema for an existing one.",
        ) from None


def find_version(registry: Any, spec: ModelSpec, version_name: str) -> Any | None:
    """The registered version, or None when the model or the version does not exist."""
    try:
        return registry.get_model(spec.model_name).version(version_name)
    except ValueError:
        return None


def _chat_template_overlay(snapshot_dir: str, family: str) -> str:
    """A folder mirroring the snapshot (symlinks) whose tokenizer_config.json carries the family's chat template.

    The Hub cache is left untouched; the registry packager copies the overlay, following the links.
    """
    overlay = Path(tempfile.mkdtemp(prefix="spcs-llm-snapshot-"))
    source = Path(snapshot_dir)
    for item in source.iterdir():
        if item.name != "tokenizer_config.json":
            os.symlink(item.resolve(), overlay / item.name)
    config_path = source / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    config["chat_template"] = template_source(family)
    (overlay / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return str(overlay)


def wrapper_arguments(spec: ModelSpec, names: DeploymentNames) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """The snowflake-ml ``huggingface`` wrapper for ``spec`` as (class name, positional, keyword arguments), decided
    without a connection: ``build_wrapper`` builds it and ``spcs-llm deploy --dry-run`` prints it.

    Most models are logged remotely: Snowflake downloads the weights itself on the CPU pool
    (``SYSTEM$IMPORT_MODEL``), and for gated models reads the Hub token from the SECRET. A model that ships no
    chat template is downloaded here instead, so that the family's template can be attached before logging and
    the service gets the OpenAI-chat signature like the others.
    """
    secret = names.hf_secret_fqn if spec.gated else None
    if spec.kind == "embedding":
        return "SentenceTransformer", (spec.hf_id,), dict(
            revision=spec.revision, token_or_secret=secret, compute_pool_for_log=names.cpu_pool)
    if not spec.attach_chat_template:
        return "TransformersPipeline", (spec.hf_id, spec.task), dict(
            revision=spec.revision, token_or_secret=secret, compute_pool_for_log=names.cpu_pool)
    if spec.gated:
        raise ConfigurationError(
            f"Model {spec.key}: attaching a chat template downloads the model on this machine, which cannot read "
            "the token stored in the Snowflake SECRET.",
            fix="Deploy it without --attach-chat-template, or use an open model.",
        )
    return "TransformersPipeline", (spec.hf_id, spec.task), dict(
        revision=spec.revision, compute_pool_for_log=None, lazy_upload=False,
        allow_patterns=list(SNAPSHOT_PATTERNS))


def log_model_arguments(spec: ModelSpec, version_name: str) -> dict[str, Any]:
    """``Registry.log_model`` keyword arguments besides the wrapper (and the signatures of an attached template)."""
    return dict(model_name=spec.model_name, version_name=version_name, comment=f"spcs-llm: {spec.hf_id} ({spec.key})",
                target_platforms=TARGET_PLATFORMS)


def build_wrapper(spec: ModelSpec, names: DeploymentNames) -> tuple[Any, dict[str, Any]]:
    """The snowflake-ml Hugging Face wrapper for ``spec`` (``wrapper_arguments``) and the extra ``log_model``
    arguments it needs."""
    openai_signatures = require("snowflake.ml.model.openai_signatures")
    huggingface = require("snowflake.ml.model.models.huggingface")

    class_name, positional, keywords = wrapper_arguments(spec, names)
    wrapper = getattr(huggingface, class_name)(*positional, **keywords)
    if not spec.attach_chat_template or spec.kind != "chat":
        return wrapper, {}
    wrapper.repo_snapshot_dir = _chat_template_overlay(wrapper.repo_snapshot_dir, spec.family)
    wrapper.has_chat_template = True
    return wrapper, {"signatures": openai_signatures.OPENAI_CHAT_WITH_PARAMS_SIGNATURE}


def ensure_version(
    registry: Any, spec: ModelSpec, names: DeploymentNames, version_name: str, *, replace: bool
) -> VersionOutcome:
    """Reuse the registered version, or (``replace``) drop it with its services and log it again."""
    existing = find_version(registry, spec, version_name)
    if existing is not None and not replace:
        log.info("Reusing %s version %s", spec.model_name, version_name)
        return VersionOutcome(existing, reused=True)
    if existing is not None:
        for service_name in services_of(existing):
            log.info("Dropping service %s of the replaced version", service_name)
            existing.delete_service(service_name)
        registry.get_model(spec.model_name).delete_version(version_name)
    wrapper, extra = build_wrapper(spec, names)
    log.info("Logging %s (%s) as %s version %s", spec.hf_id, spec.task, spec.model_name, version_name)
    model_version = registry.log_model(wrapper, **log_model_arguments(spec, version_name), **extra)
    return VersionOutcome(model_version, reused=False)
