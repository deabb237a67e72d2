"""The plugin's descriptors match the DSS contract, and `make plugin` builds a zip DSS can install."""

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ["spcs-chat", "spcs-embeddings"]


def load(path):
    return json.loads((ROOT / path).read_text())


def test_plugin_json_identity():
    plugin = load("plugin.json")
    assert plugin["id"] == "spcs-llm" and plugin["version"].count(".") == 2
    assert {"label", "description"} <= set(plugin["meta"])


@pytest.mark.parametrize("component", COMPONENTS)
def test_llm_json_params_are_read_by_the_config_parser(component):
    descriptor = load(f"python-llms/{component}/llm.json")
    names = {p["name"] for p in descriptor["params"] if p.get("type") != "SEPARATOR"}
    assert {"auth_type", "oauth_preset", "service_preset", "endpoint", "route", "protocol", "max_parallelism",
            "instance_family", "credits_per_hour", "dollars_per_credit"} <= names
    presets = {p["parameterSetId"] for p in descriptor["params"] if p.get("type") == "PRESET"}
    assert presets == {"snowflake-oauth", "snowflake-service-account"}
    for preset in presets:
        assert (ROOT / "parameter-sets" / preset / "parameter-set.json").is_file()
    families = {choice["value"] for p in descriptor["params"] if p.get("name") == "instance_family"
                for choice in p["selectChoices"]}
    assert families == set(load("resource/instance_families.json")["families"])


def test_oauth_preset_requests_an_oauth2_credential():
    params = {p["name"]: p for p in load("parameter-sets/snowflake-oauth/parameter-set.json")["params"]}
    assert params["snowflake_oauth"]["type"] == "CREDENTIAL_REQUEST"
    assert params["snowflake_oauth"]["credentialRequestSettings"]["type"] == "OAUTH2"
    assert {"authorizationEndpoint", "tokenEndpoint", "scope"} <= set(params)
    assert "refresh_token" in params["scope"]["defaultValue"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_llm_py_stays_thin(component):
    assert len((ROOT / "python-llms" / component / "llm.py").read_text().splitlines()) <= 60


def test_make_plugin_builds_the_contract_layout(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("make plugin archives the git HEAD")
    # A clone of HEAD: make plugin refuses a working tree with uncommitted changes, which a developer's may have.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    subprocess.run(["make", "-s", "plugin"], cwd=clone, check=True, capture_output=True)
    plugin = load("plugin.json")
    archive = clone / "dist" / f"dss-plugin-{plugin['id']}-{plugin['version']}.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    prefix = f"{plugin['id']}/"
    for required in ["plugin.json", "python-llms/spcs-chat/llm.json", "python-llms/spcs-chat/llm.py",
                     "python-llms/spcs-embeddings/llm.json", "python-llms/spcs-embeddings/llm.py",
                     "parameter-sets/snowflake-oauth/parameter-set.json",
                     "parameter-sets/snowflake-service-account/parameter-set.json",
                     "code-env/python/desc.json", "code-env/python/spec/requirements.txt",
                     "python-lib/spcs_llm/__init__.py", "resource/instance_families.json"]:
        assert prefix + required in names, required
    assert not any(name.startswith(prefix + "tests/") for name in names)
    requirements = (ROOT / "code-env/python/spec/requirements.txt").read_text()
    assert "dataiku" not in requirements.replace("dataiku-api", "")


INTERNAL_REFERENCES = ("spcs-protocol", "design.md", "dataiku-llm-plugin-contract", "§", "[inf]", "[T:")
SELF_EXPLAINING = {"SEPARATOR", "PRESET", "SELECT"}  # a section title, a preset picker, a labelled choice


@pytest.mark.parametrize("descriptor", [f"python-llms/{c}/llm.json" for c in COMPONENTS])
def test_every_setting_a_user_types_has_help_without_internal_references(descriptor):
    params = load(descriptor)["params"]
    undocumented = [p["name"] for p in params if p["type"] not in SELF_EXPLAINING and not p.get("description")]
    assert undocumented == []
    text = json.dumps(load(descriptor), ensure_ascii=False)
    assert [ref for ref in INTERNAL_REFERENCES if ref in text] == []
    assert "'_' written as '-'" not in text
