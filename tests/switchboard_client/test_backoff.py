"""switchboard_client.backoff: full jitter within its bounds (a pure function)."""

from hypothesis import given
from hypothesis import strategies as st

from switchboard_client import backoff_cap, backoff_delay

attempts = st.integers(min_value=0, max_value=10_000)
bases = st.floats(min_value=0.001, max_value=10.0)
caps = st.floats(min_value=0.01, max_value=600.0)
draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@given(attempts, bases, caps, draws)
def test_the_delay_lies_in_zero_to_the_capped_exponential(attempt, base, cap, draw):
    delay = backoff_delay(attempt, base, cap, rand=lambda: draw)
    assert 0.0 <= delay < cap or delay == 0.0
    assert delay <= min(cap, base * 2.0 ** min(attempt, 64))


@given(attempts, bases, caps)
def test_the_bound_grows_with_the_attempt_and_stops_at_the_cap(attempt, base, cap):
    assert backoff_cap(attempt, base, cap) <= backoff_cap(attempt + 1, base, cap) <= cap


def test_the_defaults_are_the_protocols():
    # docs/protocol.md: sleep(random(0, min(30, 0.5 * 2**attempt)))
    assert [backoff_cap(a) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(3, rand=lambda: 0.5) == 2.0
