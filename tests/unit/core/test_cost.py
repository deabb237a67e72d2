"""Credit cost: instance-family rates and the busy-time ledger's fair shares."""

import random
import threading

import pytest

from spcs_llm.core.config import CostConfig
from spcs_llm.core.cost import BusyTimeLedger, PricingRate, instance_family_rates, ledger_for, reset_ledgers
from spcs_llm.core.errors import ConfigurationError


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingClock:
    """Thread-safe: every reading is one tick later than the previous one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ticks = 0

    def __call__(self) -> float:
        with self._lock:
            self._ticks += 1
            return self._ticks * 0.001


def test_rates_come_from_the_shipped_table():
    rates = instance_family_rates()
    assert rates["GPU_NV_S"] == pytest.approx(0.57)
    assert rates["CPU_X64_XS"] == pytest.approx(0.06)
    assert len(rates) == 20  # every AWS, Azure and GCP family of the consumption table
    assert rates["GPU_GCP_NV_L4_1_24G"] == pytest.approx(0.43)


def test_pricing_rate_uses_table_for_family_case_insensitively():
    rate = PricingRate.for_config(CostConfig(instance_family="gpu_nv_m", dollars_per_credit=2.0))
    assert rate == PricingRate(credits_per_hour=2.68, dollars_per_credit=2.0)
    assert rate.dollars(3600.0) == pytest.approx(5.36)


def test_pricing_rate_override_wins_even_for_unknown_family():
    rate = PricingRate.for_config(CostConfig(instance_family="NOT_A_FAMILY", credits_per_hour=1.5))
    assert rate.credits_per_hour == 1.5
    assert rate.dollars(1800.0) == pytest.approx(1.5 / 2 * 3.0)


def test_unknown_family_lists_known_ones_and_the_override():
    with pytest.raises(ConfigurationError) as info:
        PricingRate.for_config(CostConfig(instance_family="GPU_NV_XXL"))
    text = str(info.value)
    assert "GPU_NV_XXL" in text and "GPU_NV_S" in text and "CPU_X64_XS" in text
    assert "Credits per hour" in text


def test_overlapping_requests_split_the_shared_time():
    clock = FakeClock()
    ledger = BusyTimeLedger(clock)
    a = ledger.start()
    clock.now = 5.0
    b = ledger.start()
    clock.now = 10.0
    a.stop()
    clock.now = 15.0
    b.stop()
    assert a.seconds == pytest.approx(7.5)
    assert b.seconds == pytest.approx(7.5)
    assert ledger.busy_seconds == pytest.approx(15.0)
    assert ledger.requests == 2


def test_track_context_and_idle_time_belong_to_no_request():
    clock = FakeClock()
    ledger = BusyTimeLedger(clock)
    clock.now = 100.0
    with ledger.track() as first:
        clock.now = 102.0
    clock.now = 110.0  # idle: nothing in flight
    with ledger.track() as second:
        clock.now = 113.0
    assert (first.seconds, second.seconds) == pytest.approx((2.0, 3.0))
    summary = ledger.summary()
    assert summary.calls == 2 and summary.in_flight == 0
    assert summary.busy_seconds == pytest.approx(5.0)
    assert summary.active_span_seconds == pytest.approx(13.0)
    assert summary.idle_seconds == pytest.approx(8.0)


def test_stop_is_idempotent():
    clock = FakeClock()
    ledger = BusyTimeLedger(clock)
    share = ledger.start()
    clock.now = 4.0
    share.stop()
    clock.now = 9.0
    share.stop()
    assert share.seconds == pytest.approx(4.0)
    assert ledger.busy_seconds == pytest.approx(4.0)


def _union_length(intervals):
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def _brute_force_share(index, intervals):
    """Integrate 1/n(t) over request ``index``'s interval, segment by segment."""
    points = sorted({p for interval in intervals for p in interval})
    start, stop = intervals[index]
    share = 0.0
    for left, right in zip(points, points[1:]):
        if start <= left and right <= stop:
            active = sum(1 for s, e in intervals if s <= left and right <= e)
            share += (right - left) / active
    return share


def test_random_intervals_shares_match_the_definition_and_sum_to_busy_time():
    rng = random.Random(1234)
    intervals = []
    for _ in range(40):
        start = rng.uniform(0, 100)
        intervals.append((start, start + rng.uniform(0.1, 15)))
    events = sorted([(s, "start", i) for i, (s, _) in enumerate(intervals)] +
                    [(e, "stop", i) for i, (_, e) in enumerate(intervals)])
    clock = FakeClock()
    ledger = BusyTimeLedger(clock)
    shares = {}
    for moment, kind, index in events:
        clock.now = moment
        if kind == "start":
            shares[index] = ledger.start()
        else:
            shares[index].stop()
    for index, share in shares.items():
        assert share.seconds == pytest.approx(_brute_force_share(index, intervals), abs=1e-9)
    rate = PricingRate(credits_per_hour=0.57, dollars_per_credit=3.0)
    assert sum(rate.dollars(s.seconds) for s in shares.values()) == pytest.approx(
        rate.dollars(_union_length(intervals)), rel=1e-9)
    assert ledger.busy_seconds == pytest.approx(_union_length(intervals), rel=1e-9)


def test_many_threads_shares_sum_to_busy_time():
    ledger = BusyTimeLedger(CountingClock())
    shares = []
    shares_lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(50):
            with ledger.track() as share:
                for _ in range(rng.randint(0, 3)):
                    ledger.summary()  # interleave with other threads
            with shares_lock:
                shares.append(share)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary = ledger.summary()
    assert summary.calls == 600 and summary.in_flight == 0
    assert sum(s.seconds for s in shares) == pytest.approx(summary.busy_seconds, rel=1e-9)
    assert 0 < summary.busy_seconds <= summary.active_span_seconds + 1e-12


def test_ledger_for_is_one_per_endpoint():
    reset_ledgers()
    try:
        first = ledger_for("https://a.example.snowflakecomputing.app/")
        assert ledger_for("https://a.example.snowflakecomputing.app") is first
        assert ledger_for("https://b.example.snowflakecomputing.app") is not first
    finally:
        reset_ledgers()
