"""The deployment notebook runs top to bottom against the fake session, so it cannot drift from the library."""

from __future__ import annotations

import os
import re
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
    monkeypatch.setenv("SPCS_LLM_DSS_URL", "https://dss.mycompany.com")
    monkeypatch.setenv("SPCS_LLM_CONFIRM_TEARDOWN", "SPCS_LLM")
    monkeypatch.delenv("SPCS_LLM_SMOKE_PAT", raising=False)
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        out = _text_outputs(notebook)
        assert "Running standalone" in out
        lines = [" ".join(line.split()) for line in out.splitlines()]
        assert "Endpoint: https://zephyr_7b_beta_svc-org-acct.snowflakecomputing.app" in lines
        assert "Service protocol: OpenAI-chat rows (messages → choices)" in lines
        assert "Endpoint: https://all_minilm_l6_v2_svc-org-acct.snowflakecomputing.app" in lines
        assert "Rows per request: 64" in lines
        assert "DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in out
        assert "zephyr-7b-beta: ~14.5 GB of weights, downloaded by Snowflake itself" in out  # the estimate cell
        assert "skipped: set a programmatic access token" in out  # the smoke-test cell without a PAT
        assert "If left as it is" not in out and "Billing now: 0.00 credits/h" in out  # pools suspended in the fake
        assert "GRANT IMPORTED PRIVILEGES ON DATABASE SNOWFLAKE" in out  # metering not readable in the fake
        assert "ran: DROP COMPUTE POOL IF EXISTS SPCS_LLM_GPU_POOL" in out  # teardown confirmed by database name
        assert "OAUTH_REDIRECT_URI = 'https://dss.mycompany.com/dip/api/oauth2-callback'" in out


def test_the_notebook_is_honest_about_downloads_kernels_and_cites_no_internal_documents():
    for path in NOTEBOOKS:
        text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        assert "downloaded whole to\nthe machine running this notebook" in text
        assert "notebooks/requirements.txt" in text and "kernel" in text
        assert "dss.example.com" not in text
        assert not re.search(r"§|\[inf|\[T:|spcs-protocol|design\.md|\.md\b", text)
