"""Each macro's runnable.json is valid JSON that DSS can show, declares exactly the parameters its library module
reads, keeps the billed macros for DSS admins, and its runnable.py stays a thin entry point."""

from __future__ import annotations

import ast

import pytest
from macro_runner import MACROS, RUNNABLES, descriptor

from spcs_llm.deploy.services.catalog import CATALOG
from spcs_llm.macros import check_connection, deploy_model, status, teardown

MODULES = {"spcs-deploy-model": deploy_model, "spcs-status": status, "spcs-teardown": teardown,
           "spcs-check-connection": check_connection}
PARAM_TYPES = {"STRING", "INT", "DOUBLE", "BOOLEAN", "PASSWORD", "SELECT", "CONNECTION", "PRESET", "SEPARATOR"}


def test_every_macro_has_its_library_module():
    assert sorted(MODULES) == MACROS


@pytest.mark.parametrize("macro", sorted(MODULES))
def test_the_descriptor_declares_the_params_the_macro_reads(macro):
    body = descriptor(macro)
    names = [p["name"] for p in body["params"] if p["type"] != "SEPARATOR"]
    assert len(names) == len(set(names))
    assert set(names) == MODULES[macro].PARAMS
    assert {p["type"] for p in body["params"]} <= PARAM_TYPES
    assert body["resultType"] == "HTML" and body["meta"]["label"] and body["meta"]["description"]
    assert body["macroRoles"] == [{"type": "PROJECT_MACROS"}]
    for param in body["params"]:
        if param["type"] == "SELECT":
            values = [choice["value"] for choice in param["selectChoices"]]
            assert param.get("defaultValue", values[0]) in values


@pytest.mark.parametrize("macro", ["spcs-deploy-model", "spcs-teardown"])
def test_what_bills_or_drops_is_for_dss_admins_only(macro):
    body = descriptor(macro)
    assert body["requiresGlobalAdmin"] is True and body["permissions"] == ["ADMIN"]


def test_the_deploy_form_lists_the_catalog_and_never_accepts_the_cost_by_default():
    params = {p["name"]: p for p in descriptor("spcs-deploy-model")["params"] if "name" in p}
    assert [c["value"] for c in params["model"]["selectChoices"]] == [*CATALOG, deploy_model.OTHER_MODEL]
    assert params["accept_cost"]["defaultValue"] is False and params["add_to_connection"]["defaultValue"] is False


def test_secrets_are_password_fields():
    params = {p["name"]: p for p in descriptor("spcs-check-connection")["params"] if "name" in p}
    assert all(params[name]["type"] == "PASSWORD" for name in check_connection.SECRET_PARAMS)


@pytest.mark.parametrize("macro", sorted(MODULES))
def test_the_entry_point_is_thin(macro):
    source = (RUNNABLES / macro / "runnable.py").read_text()
    imports = [node for node in ast.parse(source).body if isinstance(node, ast.ImportFrom)]
    assert [node.module for node in imports] == ["dataiku.runnables", MODULES[macro].__name__]
    assert len(source.splitlines()) <= 20
