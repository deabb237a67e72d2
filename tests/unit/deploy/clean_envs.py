"""Clean venvs built from the requirements files DSS reads (README "Environments"), each built once per test
session and shared by the test modules that run code in them (the fixtures ``plugin_env_python`` and
``deploy_env_python`` are in this folder's conftest.py): with uv when the dev venv has it (``make venv``
installs it; seconds instead of a minute), with pip otherwise or when uv fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGIN_REQUIREMENTS = ROOT / "code-env" / "python" / "spec" / "requirements.txt"
DEPLOY_REQUIREMENTS = ROOT / "notebooks" / "requirements.txt"
BUILD_TIMEOUT_S = 900


def uv_executable() -> str | None:
    beside_python = Path(sys.executable).parent / "uv"
    return str(beside_python) if beside_python.exists() else shutil.which("uv")


def _build_with_uv(uv: str, venv: Path, requirements: Path) -> bool:
    python = venv / "bin" / "python"
    try:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, capture_output=True,
                       timeout=BUILD_TIMEOUT_S)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(python), "-r", str(requirements)], check=True,
                       capture_output=True, timeout=BUILD_TIMEOUT_S)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        shutil.rmtree(venv, ignore_errors=True)
        return False
    return True


def clean_venv(tmp_path_factory: pytest.TempPathFactory, name: str, requirements: Path) -> Path:
    """The Python of a venv holding only ``requirements``, built on first use in this session's temporary dir."""
    venv = tmp_path_factory.getbasetemp() / f"clean-env-{name}"
    python, stamp = venv / "bin" / "python", venv / ".built"
    if stamp.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    uv = uv_executable()
    if not (uv and _build_with_uv(uv, venv, requirements)):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=BUILD_TIMEOUT_S)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                        str(requirements)], check=True, capture_output=True, timeout=BUILD_TIMEOUT_S)
    stamp.touch()
    return python


def plugin_lib_environment() -> dict[str, str]:
    """This process's environment with only the plugin's python-lib on the path (as DSS puts it)."""
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment["PYTHONPATH"] = str(ROOT / "python-lib")
    return environment
