"""The instance-family table as the deployment side reads it, and the deployment stack imported lazily."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from spcs_llm.deploy.dependencies import INSTALL_HINT, DeploymentStackMissingError, require
from spcs_llm.deploy.families import instance_families, smallest_fitting_gpu_family, table_date

TABLE = json.loads((Path(__file__).resolve().parents[3] / "resource" / "instance_families.json").read_text())


def test_the_table_covers_each_cloud_and_is_dated_with_a_user_facing_source():
    families = instance_families()
    clouds = {cloud for family in families.values() for cloud in family.clouds}
    assert clouds == {"aws", "azure", "gcp"}
    for cloud in clouds:
        assert any(f.has_gpu and cloud in f.clouds for f in families.values())
    assert table_date() == "2026-01-13"
    assert "Service Consumption Table" in TABLE["_source"]
    assert not any(mark in TABLE["_source"] for mark in ("§", "[inf", "[X", ".md"))


def test_gpu_nv_xs_is_azures_t4_and_the_gcp_families_are_known():
    xs = instance_families()["GPU_NV_XS"]
    assert (xs.clouds, xs.gpu, xs.gpu_memory_gib) == (("azure",), "T4", 16)
    assert xs.label.startswith("GPU_NV_XS (Azure, 1x T4 16 GB")
    assert instance_families()["GPU_GCP_NV_L4_1_24G"].clouds == ("gcp",)


def test_the_cheapest_fitting_gpu_is_chosen_per_cloud():
    assert smallest_fitting_gpu_family(16.0).name == "GPU_NV_S"
    assert smallest_fitting_gpu_family(16.0, ("gcp",)).name == "GPU_GCP_NV_L4_1_24G"
    assert smallest_fitting_gpu_family(6.0, ("azure",)).name == "GPU_NV_XS"
    assert smallest_fitting_gpu_family(200.0) is None


def test_a_missing_deployment_package_names_the_requirements_file(monkeypatch):
    monkeypatch.setitem(sys.modules, "snowflake.ml.registry", None)  # as if snowflake-ml were not installed
    with pytest.raises(DeploymentStackMissingError) as caught:
        require("snowflake.ml.registry")
    assert INSTALL_HINT in caught.value.fix and "notebooks/requirements.txt" in str(caught.value)


def test_the_cli_says_how_to_install_the_deployment_stack_when_it_is_missing(monkeypatch, capsys):
    from spcs_llm.cli import main

    monkeypatch.delenv("SPCS_LLM_SESSION_FACTORY", raising=False)
    monkeypatch.setitem(sys.modules, "snowflake.snowpark", None)
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and INSTALL_HINT in err and "snowflake" in err
