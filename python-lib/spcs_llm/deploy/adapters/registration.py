"""Register LoRA adapters against their base model version, or merge them where the account has no LoRA support.

snowflake-ml 2.6 calls this module relies on (driven through the recording fake session in the unit tests):
- ``snowflake.ml.model.models.huggingface.PeftAdapter(*, base_model: ModelVersion, adapter_path: str | None = None,
  adapter=None, adapter_repo=None, subfolder=None, revision=None, token=None)``; the constructor refuses when
  ``PlatformCapabilities.get_instance().is_lora_adapters_enabled()`` is false (the account's
  ``SYSTEM$ML_PLATFORM_CAPABILITIES`` lacks ENABLE_LORA_ADAPTERS). ``log_adapter`` makes that same check first
  (``snowml_private.lora_adapters_enabled``) to choose the merge, instead of reading the error's text.
  ``adapter_path`` must be a local folder: "adapter_path starting with '@' or 'snow://' is not supported yet"
  (``_packager/model_handlers/peft_adapter.py``).
- ``Registry.log_model(model, *, model_name, version_name, target_platforms, signatures, ...)`` takes the
  PeftAdapter (an adapter targets Snowpark Container Services only: ``registry/_manager/
  model_parameter_reconciler.py``) or the merged text-generation pipeline.
- ``FileOperation.get(stage_location, target_directory)`` downloads a stage folder (a fine-tuning job's output).
- PeftAdapter packaging copies the adapter folder's top-level *regular* files only: a symlinked
  ``adapter_config.json`` is refused and symlinked weights are skipped (``_is_regular_file`` and
  ``_copy_top_level_files`` in ``_packager/model_handlers/peft_adapter.py``). A Hugging Face cache snapshot is all
  symlinks, so ``packable_adapter_dir`` copies such a folder to real files before logging.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.core.redaction import get_logger
from spcs_llm.deploy import snowml_private
from spcs_llm.deploy.dependencies import LORA_INSTALL_HINT, require
from spcs_llm.deploy.services.catalog import registry_name
from spcs_llm.deploy.services.registry_ops import TARGET_PLATFORMS

LOGGER = get_logger(__name__)
ADAPTER_CONFIG = "adapter_config.json"
MERGED_SUFFIX = "_MERGED"  # merged versions get their own name, so a later pinned log never reuses one by mistake
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_STAGE = re.compile(r"^@[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*){0,2}(/[\w.\-]+)*/?$")


@dataclass(frozen=True)
class AdapterRequest:
    """One adapter to serve: ``alias`` is the model name callers send; ``location`` a local folder or a stage path."""

    alias: str
    location: str

    @property
    def model_name(self) -> str:
        """The adapter's registry model name."""
        return registry_name(self.alias)

    @property
    def on_stage(self) -> bool:
        return self.location.startswith("@")


@dataclass(frozen=True)
class LoggedAdapter:
    """One adapter in the registry: pinned to its base version, or merged into a full model."""

    alias: str
    model_version: Any
    merged: bool
    reused: bool
    note: str


def parse_adapter(text: str) -> AdapterRequest:
    """``alias=/local/folder`` or ``alias=@DB.SCHEMA.STAGE/folder``, checked without touching Snowflake."""
    alias, separator, location = text.partition("=")
    alias, location = alias.strip(), location.strip()
    if not separator or not alias or not location:
        raise ConfigurationError(f"Adapter {text!r} is not NAME=LOCATION.",
                                 fix="Write it like --adapter support_bot=./adapters/support_bot or "
                                     "--adapter support_bot=@SPCS_LLM.MODELS.FINETUNE/support_bot.")
    if not _ALIAS.match(alias):
        raise ConfigurationError(f"Adapter name {alias!r} is not a plain identifier.",
                                 fix="Use letters, digits and underscores, starting with a letter.")
    if location.startswith("@"):
        if not _STAGE.match(location):
            raise ConfigurationError(f"{location!r} is not a stage path.",
                                     fix="Write it like @DB.SCHEMA.STAGE/folder (plain identifiers, no spaces).")
    elif not Path(location, ADAPTER_CONFIG).is_file():
        raise ConfigurationError(f"{location} has no {ADAPTER_CONFIG}, so it is not a LoRA adapter folder.",
                                 fix="Pass the folder the fine-tuning run saved its adapter to.")
    return AdapterRequest(alias, location)


def check_adapters(requests: list[AdapterRequest]) -> None:
    """At least one adapter, and no two with one name (each becomes a registry model and a service alias)."""
    if not requests:
        raise ConfigurationError("No adapter given.", fix="Pass --adapter NAME=FOLDER (repeatable).")
    if len({request.model_name for request in requests}) != len(requests):
        raise ConfigurationError("Two adapters have the same name.", fix="Give each --adapter its own NAME.")


def local_adapter_dir(session: Any, request: AdapterRequest, workdir: str) -> str:
    """The adapter as a local folder: PeftAdapter reads local folders only, so a stage folder is downloaded first."""
    if not request.on_stage:
        return request.location
    target = Path(workdir, request.alias)
    target.mkdir(parents=True, exist_ok=True)
    session.file.get(request.location.rstrip("/") + "/", str(target))
    # inferred: GET may keep or flatten the stage sub-folders; the adapter is wherever its config landed.
    configs = sorted(target.rglob(ADAPTER_CONFIG), key=lambda path: (len(path.parts), str(path)))  # top-most first
    if not configs:
        raise ConfigurationError(f"{request.location} holds no {ADAPTER_CONFIG}.",
                                 fix="Pass the stage folder the fine-tuning job wrote the adapter to (LIST it to see).")
    return str(configs[0].parent)


def _symlinked_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_symlink())


@contextlib.contextmanager
def packable_adapter_dir(adapter_dir: str) -> Iterator[str]:
    """``adapter_dir`` as snowflake-ml packages it: only top-level regular files (no symlinks) are kept.

    A folder without symlinks is used as it is; a folder with symlinked files (a Hugging Face cache snapshot) is
    copied to a temporary folder of real files, which lives as long as the ``with`` block.
    """
    folder = Path(adapter_dir)
    links = _symlinked_files(folder)
    if not links:
        yield adapter_dir
        return
    dangling = [path.name for path in links if not path.exists()]
    if dangling:
        raise ConfigurationError(
            f"{adapter_dir} holds symlinks to missing files ({', '.join(dangling)}), so the adapter cannot be "
            "packaged.",
            fix="Download the adapter again (`huggingface-cli download REPO --local-dir FOLDER` writes real files) "
                "and pass that folder.")
    with tempfile.TemporaryDirectory(prefix="spcs-llm-adapter-files-") as copy:
        for path in sorted(folder.iterdir()):
            if path.is_file():  # follows the link: the real file's bytes are copied, not the link
                shutil.copyfile(path, os.path.join(copy, path.name))
        LOGGER.info("%s holds symlinked files (%s); logging a copy with real files, as snowflake-ml skips symlinks",
                    adapter_dir, ", ".join(path.name for path in links))
        yield copy


def merge_adapter(base_dir: str, adapter_dir: str, output_dir: str) -> Any:
    """Fold the LoRA weights into the base weights (peft ``merge_and_unload``) for accounts without adapters.

    Returns a text-generation pipeline of the merged weights (also saved to ``output_dir``): ``log_model`` takes a
    model object, and a pipeline logs with the chat signature as the base model did.
    """
    peft = require("peft", purpose="Merging an adapter into its base weights", install=LORA_INSTALL_HINT)
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    merged = peft.PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    merged.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return pipeline("text-generation", model=merged, tokenizer=tokenizer)


def _find_version(registry: Any, model_name: str, version_name: str) -> Any | None:
    try:
        return registry.get_model(model_name).version(version_name)
    except ValueError:  # no such model, or no such version (snowflake-ml model_impl.version)
        return None


def find_logged_adapter(registry: Any, request: AdapterRequest, version_name: str = "V1") -> LoggedAdapter | None:
    """The adapter already in the registry (pinned first, else merged), so a re-run logs nothing again."""
    pinned = _find_version(registry, request.model_name, version_name)
    if pinned is not None:
        return LoggedAdapter(request.alias, pinned, merged=False, reused=True,
                             note=f"{request.alias}: reusing {request.model_name} {version_name}.")
    merged = _find_version(registry, request.model_name, version_name + MERGED_SUFFIX)
    if merged is not None:
        return LoggedAdapter(request.alias, merged, merged=True, reused=True,
                             note=f"{request.alias}: reusing the merged model {request.model_name} "
                                  f"{version_name}{MERGED_SUFFIX}.")
    return None


def log_adapter(
    registry: Any,
    base_version: Any,
    adapter_dir: str,
    request: AdapterRequest,
    *,
    version_name: str = "V1",
    base_model_dir: str | None = None,
    merge: Callable[[str, str, str], Any] = merge_adapter,
) -> LoggedAdapter:
    """Log ``adapter_dir`` as ``request.model_name`` pinned to ``base_version``; merged where LoRA is off."""
    from snowflake.ml.model.models.huggingface import PeftAdapter

    if not Path(adapter_dir, ADAPTER_CONFIG).is_file():
        raise ConfigurationError(f"{adapter_dir} has no {ADAPTER_CONFIG}, so it is not a LoRA adapter.",
                                 fix="Pass the folder the fine-tuning run saved its adapter to.")
    with packable_adapter_dir(adapter_dir) as files:
        if not snowml_private.lora_adapters_enabled():  # the check PeftAdapter makes, asked before, not parsed after
            return _log_merged(registry, files, request, version_name + MERGED_SUFFIX, base_model_dir, merge)
        adapter = PeftAdapter(base_model=base_version, adapter_path=files)
        LOGGER.info("Logging adapter %s as %s %s pinned to its base version", request.alias, request.model_name,
                    version_name)
        version = registry.log_model(adapter, model_name=request.model_name, version_name=version_name,
                                     comment=f"spcs-llm: LoRA adapter {request.alias}",
                                     target_platforms=TARGET_PLATFORMS)
    return LoggedAdapter(request.alias, version, merged=False, reused=False,
                         note=f"{request.alias}: logged as {request.model_name} {version_name}, pinned to its base.")


def _log_merged(registry: Any, adapter_dir: str, request: AdapterRequest, version_name: str,
                base_model_dir: str | None, merge: Callable[[str, str, str], Any]) -> LoggedAdapter:
    from snowflake.ml.model import openai_signatures

    if base_model_dir is None:
        raise ConfigurationError(
            "This account does not have LoRA adapters enabled, so the adapter must be merged into the base "
            "weights, which needs them on this machine.",
            fix="Pass the base model's local folder (--base-model-dir), or ask Snowflake to enable LoRA adapters.",
        )
    note = (f"{request.alias}: LoRA adapters are not enabled on this account, so the adapter was merged into the "
            f"base weights and logged as the full model {request.model_name} {version_name} (its own service).")
    LOGGER.warning(note)
    with tempfile.TemporaryDirectory(prefix="spcs-llm-merged-") as output_dir:
        merged = merge(base_model_dir, adapter_dir, output_dir)
        version = registry.log_model(merged, model_name=request.model_name, version_name=version_name,
                                     comment=f"spcs-llm: LoRA adapter {request.alias} merged into its base",
                                     target_platforms=TARGET_PLATFORMS,
                                     signatures=openai_signatures.OPENAI_CHAT_WITH_PARAMS_SIGNATURE)
    return LoggedAdapter(request.alias, version, merged=True, reused=False, note=note)
