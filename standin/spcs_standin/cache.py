"""The stand-in's build cache: models are built once per machine, atomically, under a file lock."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock


def cache_root() -> Path:
    """Where built models live; ``SPCS_LLM_CACHE`` wins so CI can point at a shared, writable place."""
    return Path(os.environ.get("SPCS_LLM_CACHE") or Path.home() / ".cache" / "spcs-llm")


def build_once(target: Path, marker: str, build: Callable[[Path], None]) -> Path:
    """Return ``target``, first running ``build(staging)`` and moving the result there if ``target/marker`` is absent.

    Parallel processes (test workers, the demo and a stand-in) wait on one lock; a half-built folder never becomes
    visible because the build happens in a staging folder that is renamed into place.
    """
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / marker).is_file():
            staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
            try:
                build(staging)
                staging.chmod(0o755)  # mkdtemp makes it private; a shared cache must stay readable
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target
