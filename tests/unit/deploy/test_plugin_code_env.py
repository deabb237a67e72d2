"""The DSS plugin code env holds only what the connectors import: built in a clean venv, both components load
and answer from it, and the deployment stack (snowflake-ml, snowpark, pandas) is not there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from clean_envs import DEPLOY_REQUIREMENTS, ROOT, plugin_lib_environment
from clean_envs import PLUGIN_REQUIREMENTS as REQUIREMENTS

PROBE = Path(__file__).parent / "plugin_env_probe.py"


def _requirement_names(path: Path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line.split(">")[0].split("<")[0].split("=")[0].strip().lower() for line in lines if line and
            not line.startswith("-r")}


def test_the_plugin_env_names_no_deployment_package_and_pins_each_range():
    names = _requirement_names(REQUIREMENTS)
    assert not names & {"snowflake-ml-python", "snowflake-snowpark-python", "pandas", "pyarrow", "tqdm", "torch"}
    pinned = [line for line in REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")]
    assert all(">=" in line and "<" in line for line in pinned), pinned
    desc = json.loads((ROOT / "code-env" / "python" / "desc.json").read_text())
    assert desc["acceptedPythonInterpreters"] == ["PYTHON310", "PYTHON311", "PYTHON312"]


def test_the_deployment_requirements_add_the_snowflake_stack_on_top_of_the_plugin_env():
    assert "-r ../code-env/python/spec/requirements.txt" in DEPLOY_REQUIREMENTS.read_text()
    assert {"snowflake-ml-python", "snowflake-snowpark-python"} <= _requirement_names(DEPLOY_REQUIREMENTS)
    assert "-r ../notebooks/requirements.txt" in (ROOT / "tests" / "requirements.txt").read_text()


@pytest.mark.timeout(900)
def test_both_components_load_and_answer_from_a_clean_plugin_env(plugin_env_python):
    probe = subprocess.run([str(plugin_env_python), str(PROBE)], check=True, capture_output=True, text=True,
                           env=plugin_lib_environment())
    report = json.loads(probe.stdout)
    assert report["chat_text"] == "pong" and report["embedding"] == [0.25, 0.5]
    assert report["importable"] == {"snowflake": False, "pandas": False, "pyarrow": False, "torch": False,
                                    "transformers": False}
