"""A request whose credential was just renewed is sent at once, not after another thread's Retry-After pause:
short-lived session tokens (the soak's are refused after 2 s, as long as a Retry-After) would be stale after it."""

import threading

from test_limiter_adaptive import Clock, overload

from spcs_llm.core.limiter import EndpointLimiter


def test_a_renewal_resend_skips_the_pause_once_and_the_next_request_waits_again():
    clock = Clock()
    limiter = EndpointLimiter(8, clock=clock)
    finish = threading.Event()

    def refused_caller() -> None:  # another caller's request is refused with Retry-After: 5; it stays alive
        overload(limiter, retry_after=5.0)
        finish.wait(10)

    refused = threading.Thread(target=refused_caller)
    refused.start()
    resent, entered_again = threading.Event(), threading.Event()

    def renewing_caller() -> None:
        limiter.skip_pause_once()
        limiter.acquire()  # the resend with the renewed credential
        resent.set()
        limiter.release()
        limiter.acquire()  # this caller's next request: it waits out the pause like everyone else
        entered_again.set()
        limiter.release()

    while limiter.paused_for() == 0.0:
        pass
    renewing = threading.Thread(target=renewing_caller)
    renewing.start()
    assert resent.wait(10)  # at once: the clock has not moved
    assert not entered_again.wait(0.2)
    assert limiter.paused_for() == 5.0
    clock.now += 5.0
    assert entered_again.wait(10)
    finish.set()
    for thread in (renewing, refused):
        thread.join(10)
