"""The deployment notebook runs top to bottom against the fake session, so it cannot drift from the library."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _text_outputs(notebook) -> str:
    return "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )


def test_there_is_a_deployment_notebook():
    assert NOTEBOOKS


def test_the_notebook_executes_and_ends_with_connection_settings(monkeypatch):
    # The kernel is a separate process: it finds the fake through the same session-factory hook the CLI uses.
    monkeypatch.setenv("SPCS_LLM_SESSION_FACTORY", "fake_snowflake:session_from_environment")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "python-lib"), str(Path(__file__).parent)]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        out = _text_outputs(notebook)
        assert "Running standalone" in out
        assert "endpoint           : https://zephyr_7b_beta_svc-org-acct.snowflakecomputing.app" in out
        assert "protocol           : openai_chat" in out
        assert "endpoint           : https://all_minilm_l6_v2_svc-org-acct.snowflakecomputing.app" in out
        assert "rows_per_request   : 64" in out
        assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in out
