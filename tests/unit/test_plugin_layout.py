"""The plugin's descriptors match the DSS contract, `make plugin` builds a zip DSS can install holding the plugin's
files only, and no module grows past what one reader holds in mind (ARCHITECTURE.md)."""

import json
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ["spcs-chat", "spcs-embeddings"]
ALL_COMPONENTS = sorted(path.parent.name for path in (ROOT / "python-llms").glob("*/llm.json"))
# What DSS installs (the Makefile's PLUGIN_FILES): the descriptors, the shipped library and what it reads at run time.
PLUGIN_FILES = {"plugin.json", "python-llms", "python-runnables", "custom-recipes", "python-lib", "parameter-sets",
                "code-env", "resource", "notebooks", "README.md", "LICENSE"}
# The development side of the repository, never in the zip: the stand-in, benchmarks, tests, CI and tool settings.
NOT_SHIPPED = {"standin", "bench", "tests", ".ci", "pyproject.toml", "Makefile", ".gitignore", "ARCHITECTURE.md"}
MAX_MODULE_LINES = 400


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


@pytest.mark.parametrize("component", ALL_COMPONENTS)
def test_llm_py_stays_thin(component):
    assert len((ROOT / "python-llms" / component / "llm.py").read_text().splitlines()) <= 60


class BuiltPlugin:
    """The zip ``make plugin`` built from a clone of HEAD, and the files HEAD tracks."""

    def __init__(self, clone: Path) -> None:
        plugin = json.loads((clone / "plugin.json").read_text())
        self.prefix = f"{plugin['id']}/"
        archive = clone / "dist" / f"dss-plugin-{plugin['id']}-{plugin['version']}.zip"
        self.names = {name for name in zipfile.ZipFile(archive).namelist() if not name.endswith("/")}
        tracked = subprocess.run(["git", "ls-files"], cwd=clone, check=True, capture_output=True, text=True)
        self.tracked = set(tracked.stdout.splitlines())

    def paths(self) -> set[str]:
        """The zip's files as paths in the repository (without the plugin-id folder every entry sits in)."""
        assert all(name.startswith(self.prefix) for name in self.names)
        return {name[len(self.prefix):] for name in self.names}


@pytest.fixture(scope="module")
def built_plugin(tmp_path_factory: pytest.TempPathFactory) -> BuiltPlugin:
    if not (ROOT / ".git").exists():
        pytest.skip("make plugin archives the git HEAD")
    # A clone of HEAD: make plugin refuses a working tree with uncommitted changes, which a developer's may have.
    clone = tmp_path_factory.mktemp("plugin") / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    subprocess.run(["make", "-s", "plugin"], cwd=clone, check=True, capture_output=True)
    return BuiltPlugin(clone)


def test_make_plugin_builds_the_contract_layout(built_plugin: BuiltPlugin):
    names, prefix = built_plugin.names, built_plugin.prefix
    for required in ["plugin.json", "python-llms/spcs-chat/llm.json", "python-llms/spcs-chat/llm.py",
                     "python-llms/spcs-embeddings/llm.json", "python-llms/spcs-embeddings/llm.py",
                     "parameter-sets/snowflake-oauth/parameter-set.json",
                     "parameter-sets/snowflake-service-account/parameter-set.json",
                     "code-env/python/desc.json", "code-env/python/spec/requirements.txt",
                     "python-lib/spcs_llm/__init__.py", "resource/instance_families.json"]:
        assert prefix + required in names, required
    requirements = (ROOT / "code-env/python/spec/requirements.txt").read_text()
    assert "dataiku" not in requirements.replace("dataiku-api", "")


def test_the_zip_holds_the_plugin_files_only(built_plugin: BuiltPlugin):
    paths = built_plugin.paths()
    top = {path.split("/", 1)[0] for path in paths}
    assert top == PLUGIN_FILES
    assert top & NOT_SHIPPED == set()
    # python-lib ships the one library, whole: every tracked file under python-lib/spcs_llm, and nothing else.
    library = {path for path in paths if path.startswith("python-lib/")}
    assert library == {path for path in built_plugin.tracked if path.startswith("python-lib/spcs_llm/")}
    assert [path for path in paths if "__pycache__" in path or path.endswith(".pyc")] == []
    # Every tracked file of the plugin's folders is in it, so the zip is HEAD's plugin and not a subset.
    shipped = {path for path in built_plugin.tracked if path.split("/", 1)[0] in PLUGIN_FILES}
    assert paths == shipped


def test_the_makefile_ships_the_plugin_files():
    line = re.search(r"^PLUGIN_FILES := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert line and set(line[1].split()) == PLUGIN_FILES


def test_no_module_is_over_400_lines():
    """A module one reader can hold in mind; a longer one is split by what it does (ARCHITECTURE.md)."""
    modules = sorted((*(ROOT / "python-lib").rglob("*.py"), *(ROOT / "standin").rglob("*.py")))
    assert modules
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines()) for path in modules}
    offenders = {path: lines for path, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert offenders == {}, f"over {MAX_MODULE_LINES} lines: {offenders}"


INTERNAL_REFERENCES = ("spcs-protocol", "design.md", "dataiku-llm-plugin-contract", "§", "[inf]", "[T:")
SELF_EXPLAINING = {"SEPARATOR", "PRESET", "SELECT"}  # a section title, a preset picker, a labelled choice


@pytest.mark.parametrize("descriptor", [f"python-llms/{c}/llm.json" for c in ALL_COMPONENTS])
def test_every_setting_a_user_types_has_help_without_internal_references(descriptor):
    params = load(descriptor)["params"]
    undocumented = [p["name"] for p in params if p["type"] not in SELF_EXPLAINING and not p.get("description")]
    assert undocumented == []
    text = json.dumps(load(descriptor), ensure_ascii=False)
    assert [ref for ref in INTERNAL_REFERENCES if ref in text] == []
    assert "'_' written as '-'" not in text
