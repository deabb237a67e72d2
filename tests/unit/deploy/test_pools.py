"""What a compute pool bills now: billed states, node counts, the credits table, unknown families."""

from __future__ import annotations

import pytest

from spcs_llm.core.cost import instance_family_rates
from spcs_llm.deploy import Deployer
from spcs_llm.deploy.services.pools import pool_billing

GPU_RATE = instance_family_rates()["GPU_NV_S"]


@pytest.mark.parametrize("state", ["IDLE", "ACTIVE", "STOPPING", "RESIZING"])
def test_billed_states_charge_every_running_node(state):
    billing = pool_billing({"name": "P", "state": state, "instance_family": "GPU_NV_S", "active_nodes": 2,
                            "idle_nodes": 1})
    assert billing.billed_nodes == 3
    assert billing.credits_per_hour == pytest.approx(3 * GPU_RATE)


@pytest.mark.parametrize("state", ["SUSPENDED", "STARTING"])
def test_suspended_and_starting_pools_cost_nothing(state):
    billing = pool_billing({"name": "P", "state": state, "instance_family": "GPU_NV_S", "active_nodes": 1,
                            "idle_nodes": 0})
    assert billing.billed_nodes == 0 and billing.credits_per_hour == 0.0


def test_a_row_without_node_columns_counts_min_nodes():
    billing = pool_billing({"name": "P", "state": "idle", "instance_family": "cpu_x64_s", "min_nodes": 2})
    assert billing.state == "IDLE" and billing.instance_family == "CPU_X64_S"
    assert billing.credits_per_hour == pytest.approx(2 * instance_family_rates()["CPU_X64_S"])


def test_an_unknown_family_reports_no_rate_instead_of_zero():
    billing = pool_billing({"name": "P", "state": "ACTIVE", "instance_family": "GPU_FUTURE_FAMILY",
                            "active_nodes": 1, "idle_nodes": 0})
    assert billing.billed_nodes == 1 and billing.credits_per_hour is None
    priced = pool_billing({"name": "P", "state": "ACTIVE", "instance_family": "GPU_FUTURE_FAMILY", "active_nodes": 2},
                          {"GPU_FUTURE_FAMILY": 1.5})
    assert priced.credits_per_hour == pytest.approx(3.0)


def test_every_cloud_has_its_gpu_families_priced():
    rates = instance_family_rates()
    assert rates["GPU_GCP_NV_L4_1_24G"] == pytest.approx(0.43) and rates["GPU_NV_SM"] == pytest.approx(1.70)
    assert all(rate > 0 for rate in rates.values())


def test_a_wake_up_costs_the_minimum_nodes_for_the_auto_suspend_delay_at_least_five_minutes():
    quick = pool_billing({"name": "P", "state": "SUSPENDED", "instance_family": "GPU_NV_S", "min_nodes": 2,
                          "auto_suspend_secs": 60})
    assert quick.credits_per_hour == 0.0
    assert quick.credits_per_resume == pytest.approx(2 * GPU_RATE * 300 / 3600)
    slow = pool_billing({"name": "P", "state": "IDLE", "instance_family": "GPU_NV_S", "auto_suspend_secs": 3600})
    assert slow.credits_per_resume == pytest.approx(GPU_RATE)


def test_deployer_reports_configured_pools_and_the_pools_services_run_on(session, account):
    account.compute_pools["TEAM_POOL"] = "GPU_NV_M"
    account.pool_columns["TEAM_POOL"] = {"state": "ACTIVE", "active_nodes": 1}
    account.pool_columns["SPCS_LLM_CPU_POOL"] = {"state": "IDLE", "idle_nodes": 1}
    account.add_service("PHI_2", "V1", "PHI_2_SVC", ["RUNNING"], pool="TEAM_POOL")
    deployer = Deployer(session)
    pools = {pool.pool: pool for pool in deployer.pools(deployer.status())}
    assert set(pools) == {"SPCS_LLM_GPU_POOL", "SPCS_LLM_CPU_POOL", "TEAM_POOL"}
    assert pools["SPCS_LLM_GPU_POOL"].credits_per_hour == 0.0
    assert pools["SPCS_LLM_CPU_POOL"].credits_per_hour == pytest.approx(instance_family_rates()["CPU_X64_S"])
    assert pools["TEAM_POOL"].credits_per_hour == pytest.approx(instance_family_rates()["GPU_NV_M"])


def test_missing_pools_are_left_out(session, account):
    account.compute_pools.clear()
    assert Deployer(session).pools() == []
