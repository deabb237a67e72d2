"""The private snowflake-ml APIs the deployment library relies on: all in one module, all still where they were, and
the deployment env bounded to the snowflake-ml versions they were checked against."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from spcs_llm.core.errors import DeploymentError
from spcs_llm.deploy import snowml_private
from spcs_llm.deploy.batch.plan import _model_input
from spcs_llm.deploy.services.catalog import CATALOG

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "python-lib" / "spcs_llm"
# a private snowflake-ml module or name: snowflake.ml._internal, snowflake.ml.model._client, ..._InternalInputSpec
_PRIVATE_IMPORT = re.compile(r"^\s*(from\s+snowflake\.ml\S*\._\w|import\s+snowflake\.ml\S*\._\w|"
                             r"from\s+snowflake\.ml\S*\s+import\s+.*\b_[A-Za-z])", re.MULTILINE)
_PRIVATE_MODULE_TEXT = re.compile(r"""["']snowflake\.ml(\.\w+)*\._\w+""")


@pytest.mark.parametrize(("module", "name"), [(module, name) for module, name, _use in snowml_private.PRIVATE_APIS],
                         ids=[f"{module}.{name}" for module, name, _use in snowml_private.PRIVATE_APIS])
def test_every_private_snowml_api_is_still_where_spcs_llm_calls_it(module, name):
    try:
        found = snowml_private._private(module, name)
    except DeploymentError as error:
        pytest.fail(f"snowflake-ml moved {module}.{name}: {error}")
    assert callable(found), f"{module}.{name} is no longer callable"


def test_a_moved_private_api_is_a_deployment_error_naming_it_and_the_tested_versions():
    with pytest.raises(DeploymentError, match=r"snowflake\.ml\.model\._client\.ops\.param_utils\.gone") as raised:
        snowml_private._private("snowflake.ml.model._client.ops.param_utils", "gone")
    assert f"snowflake-ml-python{snowml_private.TESTED_SNOWML}" in raised.value.fix
    assert "notebooks/requirements.txt" in raised.value.fix


def test_no_other_module_reaches_into_snowflake_ml_privately():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "snowml_private.py":
            continue
        text = path.read_text(encoding="utf-8")
        if _PRIVATE_IMPORT.search(text) or _PRIVATE_MODULE_TEXT.search(text) or re.search(r"\._specs\b", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], f"private snowflake-ml use outside deploy/snowml_private.py: {offenders}"


def _pin(path: Path) -> SpecifierSet:
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("snowflake-ml-python"):
            return Requirement(line).specifier
    raise AssertionError(f"{path} does not name snowflake-ml-python")


def test_the_plugin_env_is_bounded_to_the_tested_snowml_minor_versions():
    pinned = _pin(ROOT / "code-env" / "python" / "spec" / "requirements.txt")
    assert pinned == SpecifierSet(snowml_private.TESTED_SNOWML)
    assert "2.7.0" not in pinned and "3.0.0" not in pinned
    assert metadata.version("snowflake-ml-python") in pinned
    locked = re.search(r"^snowflake-ml-python==(\S+)", (ROOT / "tests" / "requirements.lock").read_text(),
                       re.MULTILINE)
    assert locked is not None and locked[1] in pinned


@pytest.mark.parametrize(("signature", "content_parts"), [
    ("OPENAI_CHAT_WITH_PARAMS_SIGNATURE", True),
    ("OPENAI_CHAT_WITH_PARAMS_SIGNATURE_WITH_CONTENT_FORMAT_STRING", False),
])
def test_the_chat_input_shape_is_read_from_the_public_signature_dict(signature, content_parts):
    from snowflake.ml.model import openai_signatures

    function = {"signature": getattr(openai_signatures, signature)["__call__"]}
    model_input = _model_input(function, CATALOG["zephyr-7b-beta"], None)
    assert (model_input.feature, model_input.chat, model_input.content_parts) == ("messages", True, content_parts)


def test_generation_params_go_through_snowmls_own_validation_and_sql_literals():
    from snowflake.ml.model import openai_signatures

    params = openai_signatures.OPENAI_CHAT_WITH_PARAMS_SIGNATURE["__call__"].params
    resolved = snowml_private.resolve_params({"temperature": 0.5}, params)
    assert dict((str(name), value) for name, value in resolved)["TEMPERATURE"] == 0.5
    assert [snowml_private.param_sql(value) for value in ("it's", True, None)] == ["'it\\'s'", "true", "NULL"]


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_the_readme_lists_every_deployment_module_that_relies_on_an_inferred_fact():
    section = _readme_section("What the deployment tools rely on")
    assert "| what is relied on | where | status | source |" in section
    inferred = sorted(str(path.relative_to(PACKAGE)) for path in (PACKAGE / "deploy").rglob("*.py")
                      if re.search(r"\binferred\b", path.read_text(encoding="utf-8"), re.IGNORECASE))
    missing = [path for path in inferred
               if not any(f"`{path}`" in row and "| inferred" in row for row in section.splitlines())]
    assert missing == [], f"README 'What the deployment tools rely on' has no inferred row for {missing}"
    for point in ("symlink", "pip install", "ROW_ID", "snowml_private.py", "JSON string", "SECRET"):
        assert point in section, point
