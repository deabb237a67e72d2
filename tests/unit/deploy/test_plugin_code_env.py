"""The DSS plugin code env: DSS runs every component of a plugin in its one env, so it holds what the connectors
import and the Snowflake stack the macros and the Flow recipe need. Built in a clean venv, both connectors load and
answer from it without loading that stack, and the macros' and the recipe's deployment steps find it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from clean_envs import DEPLOY_REQUIREMENTS, ROOT, plugin_lib_environment
from clean_envs import PLUGIN_REQUIREMENTS as REQUIREMENTS

PROBE = Path(__file__).parent / "plugin_env_probe.py"
SNOWFLAKE_STACK = {"snowflake-ml-python", "snowflake-snowpark-python"}


def _requirement_names(path: Path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line.split(">")[0].split("<")[0].split("=")[0].strip().lower() for line in lines if line and
            not line.startswith("-r")}


def test_the_plugin_env_holds_the_snowflake_stack_but_no_model_stack_and_pins_each_range():
    names = _requirement_names(REQUIREMENTS)
    assert SNOWFLAKE_STACK <= names
    assert not names & {"torch", "transformers", "peft", "sentence-transformers"}
    pinned = [line.split("#", 1)[0] for line in REQUIREMENTS.read_text().splitlines()
              if line and not line.startswith("#")]
    assert all(">=" in line and "<" in line for line in pinned), pinned
    desc = json.loads((ROOT / "code-env" / "python" / "desc.json").read_text())
    assert desc["acceptedPythonInterpreters"] == ["PYTHON310", "PYTHON311", "PYTHON312"]


def test_the_deployment_requirements_are_the_plugin_env_plus_progress_bars():
    assert "-r ../code-env/python/spec/requirements.txt" in DEPLOY_REQUIREMENTS.read_text()
    assert _requirement_names(DEPLOY_REQUIREMENTS) == {"tqdm"}
    assert "-r ../notebooks/requirements.txt" in (ROOT / "tests" / "requirements.txt").read_text()


@pytest.mark.timeout(900)
def test_both_components_answer_without_loading_the_snowflake_stack_which_the_macros_find(plugin_env_python):
    probe = subprocess.run([str(plugin_env_python), str(PROBE)], check=True, capture_output=True, text=True,
                           env=plugin_lib_environment())
    report = json.loads(probe.stdout)
    assert report["chat_text"] == "pong" and report["embedding"] == [0.25, 0.5]
    # The connectors load nothing of the Snowflake or model stack, although the env has the former.
    assert report["loaded_by_connectors"] == [], report["loaded_by_connectors"]
    assert report["importable"] == {"snowflake.snowpark": True, "snowflake.ml.registry": True, "pandas": True,
                                    "torch": False, "transformers": False}
    # The macros and the recipe import, and the library finds what their deployment steps need.
    assert report["entry_libraries"] == "imported"
    assert report["stack"] == "found"
