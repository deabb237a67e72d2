"""The status macro: the services, what each pool bills now and per day/month, and a chart of the credits billed
per day — one bar per day, days without usage included."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from macro_runner import dss_with, run_macro

from spcs_llm.core.cost import instance_family_rates
from spcs_llm.deploy.services.pools import HOURS_PER_DAY, HOURS_PER_MONTH

TODAY = date.today()


@pytest.fixture
def dss(session, monkeypatch):
    yield from dss_with(session, monkeypatch)


def test_services_pools_and_what_they_bill(dss, account, session):
    account.add_service("PHI_2", "V1", "PHI_2_SVC", ["RUNNING"])
    account.pool_columns["SPCS_LLM_GPU_POOL"] = {"state": "ACTIVE", "active_nodes": 1}
    run = run_macro("spcs-status", connection="snow", dollars_per_credit=2)
    page = run.page
    assert dss.connections_asked == ["snow"]
    assert ["SPCS_LLM.MODELS.PHI_2_SVC", "RUNNING", "SPCS_LLM_GPU_POOL",
            "phi_2_svc-org-acct.snowflakecomputing.app"] in page.rows
    rate = instance_family_rates()["GPU_NV_S"]
    gpu = next(row for row in page.rows if row[0] == "SPCS_LLM_GPU_POOL")
    assert gpu[1:6] == ["ACTIVE", "GPU_NV_S", "1", f"{rate:.2f}", f"${rate * 2:,.2f}"]
    assert gpu[6] == f"{rate * HOURS_PER_DAY:.1f} cr (${rate * HOURS_PER_DAY * 2:,.0f})"
    assert gpu[7] == f"{rate * HOURS_PER_MONTH:,.0f} cr (${rate * HOURS_PER_MONTH * 2:,.0f})"
    assert f"Billing now: {rate:.2f} credits/h (about ${rate * 2:.2f}/h at $2/credit)" in page.text
    assert page.text.count("compute pool state family") == 1  # billing_report's projection, not its table again
    assert "Something bills right now" in page.text and "Tear down SPCS" in page.text
    assert not any("ACCOUNT_USAGE" in s for s in session.statements)  # no history asked for
    assert run.target == (4, "NONE") and run.progress == [1, 2, 3, 4]


def test_the_chart_has_one_bar_per_day(dss, account, monkeypatch):
    account.usage_history = {"SPCS_LLM_GPU_POOL": (5.0, 9)}
    account.daily_history = [("SPCS_LLM_GPU_POOL", TODAY - timedelta(days=2), 3.0),
                             ("SPCS_LLM_CPU_POOL", TODAY - timedelta(days=2), 0.5),
                             ("SPCS_LLM_GPU_POOL", TODAY, 1.5), ("OTHER_POOL", TODAY, 99.0)]
    page = run_macro("spcs-status", connection="snow", history_days=5).page
    assert len(page.bars) == 5
    assert page.bars[0] == f"{(TODAY - timedelta(days=4)).isoformat()}: 0.00 credits ($0.00)"
    assert page.bars[2] == f"{(TODAY - timedelta(days=2)).isoformat()}: 3.50 credits ($10.50)"
    assert page.bars[4] == f"{TODAY.isoformat()}: 1.50 credits ($4.50)"
    assert "Credits per day, 5.00 in all ($15.00)" in page.text
    assert "Billed over the last 5 day(s) (Snowflake metering, up to 3 h late): 5.00 credits" in page.text
    assert "svg" in page.tags and "script" not in page.tags


def test_without_the_metering_privilege_it_says_so_and_draws_no_chart(dss):
    page = run_macro("spcs-status", connection="snow", history_days=3).page
    assert "GRANT IMPORTED PRIVILEGES ON DATABASE SNOWFLAKE" in page.text
    assert page.bars == [] and "No services." in page.text and "Error" not in page.text


def test_a_missing_snowpark_is_one_block_with_the_macro_fix(monkeypatch):
    """Outside DSS (no dataiku.snowpark): the session error in our words, and a fix a DSS admin can act on."""
    import dataiku_fakes

    monkeypatch.delenv("SPCS_LLM_SESSION_FACTORY", raising=False)
    dataiku_fakes.install_runnables()
    try:
        page = run_macro("spcs-status", connection="snow").page
    finally:
        dataiku_fakes.uninstall()
    assert "Error: No Snowflake session could be opened from the DSS connection 'snow'" in page.text
    assert "Fix: Pick a DSS Snowflake connection" in page.text and "Administration > Plugins > spcs-llm" in page.text
    assert "--dss-connection" not in page.text.split("Fix:")[1] and "Traceback" not in page.text


def test_a_family_missing_from_the_price_table_shows_question_marks(dss, account):
    account.compute_pools["SPCS_LLM_GPU_POOL"] = "GPU_FUTURE_XL"
    account.pool_columns["SPCS_LLM_GPU_POOL"] = {"state": "ACTIVE", "active_nodes": 1}
    page = run_macro("spcs-status", connection="snow").page
    gpu = next(row for row in page.rows if row[0] == "SPCS_LLM_GPU_POOL")
    assert gpu[4:8] == ["?", "?", "?", "?"] and "not priced: SPCS_LLM_GPU_POOL" in page.text
