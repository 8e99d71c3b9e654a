"""Negative evidence from SCADA (issue 22, SPEC §5.3): a feeder whose breaker reports to SCADA is
never predicted out. Its meters' outages roll up to their DPs, never to the feeder, unless the
feeder's own trip says it opened. A DBA marks such feeders (`network_feeders.scada_monitored`);
the first outage or restoration alarm that names a feeder marks it too.

On the engine grid (engine_grid.py): F-B has DPs DP-B1..DP-B4 of ten meters each. Unmonitored,
two of its DPs out within five minutes roll it up (test_correlation_engine.py,
test_two_dps_of_a_feeder_roll_up_to_the_feeder). Each scenario is played as sent and reversed."""

import pytest

from conftest import call, query, scalar
from engine_grid import assert_counts_are_recounts, build_grid, kaifa, picture, scada

ORDERS = ["as sent", "reversed"]


@pytest.fixture
def grid(pool):
    build_grid(pool)
    return pool


def play(pool, events, order):
    for function, payload in (events if order == "as sent" else list(reversed(events))):
        call(pool, function, payload)
    assert_counts_are_recounts(pool)


def meters(prefix, numbers):
    return [f"{prefix}-{n:02d}" for n in numbers]


def two_dps_of_f_b():
    """DP-B1's meters 1-3 off at 10:00-10:02, DP-B2's at 10:03-10:05: each DP rolls up."""
    return [kaifa(m, t) for m, t in zip(meters("E-B1", [1, 2, 3]) + meters("E-B2", [1, 2, 3]),
                                        ["10:00", "10:01", "10:02", "10:03", "10:04", "10:05"])]


def monitored(pool, feeder):
    return scalar(pool, "SELECT scada_monitored FROM network_feeders WHERE feeder_id = %s", (feeder,))


@pytest.mark.parametrize("order", ORDERS)
def test_a_feeder_marked_monitored_is_never_predicted_out(grid, order):
    # The same six last gasps that roll F-B up when it is not monitored. Marked, F-B's breaker
    # would have tripped had the feeder opened: two faults, at two DPs, each with its three meters.
    query(grid, "UPDATE network_feeders SET scada_monitored = true WHERE feeder_id = 'F-B'")
    play(grid, two_dps_of_f_b(), order)
    assert picture(grid) == [
        ("DP-B1", "distribution_point", "confirmed", 3, 3, "0.99", "10:00", None, meters("E-B1", [1, 2, 3]), None),
        ("DP-B2", "distribution_point", "confirmed", 3, 3, "0.99", "10:03", None, meters("E-B2", [1, 2, 3]), None)]


@pytest.mark.parametrize("order", ORDERS)
def test_a_monitored_feeder_that_trips_takes_in_its_dp_outages(grid, order):
    # F-B is monitored and its breaker trips at 10:00: the trip is the evidence the veto waits for.
    # As sent, the DPs roll up first and the trip takes both DP outages in; reversed, the trip comes
    # first and every meter joins it. One feeder outage of six meters, certain.
    query(grid, "UPDATE network_feeders SET scada_monitored = true WHERE feeder_id = 'F-B'")
    play(grid, two_dps_of_f_b() + [scada("B", "10:00")], order)
    assert picture(grid) == [
        ("F-B", "feeder", "confirmed", 6, 6, "1.00", "10:00", None,
         meters("E-B1", [1, 2, 3]) + meters("E-B2", [1, 2, 3]), None)]


def test_a_feeder_is_marked_monitored_by_its_first_outage_or_restoration_alarm(grid):
    # F-A's trip and restoration at 09:00-09:10 mark F-A (not F-B); later faults at two of F-A's DPs
    # stay two DP outages, while the same on F-B still rolls F-B up. One order only: the mark is
    # what a feeder is known to be when a signal is correlated, not an event of its own in time.
    assert not monitored(grid, "F-A")
    call(grid, *scada("A", "09:00"))
    call(grid, *scada("A", "09:10", restoration=True))
    assert monitored(grid, "F-A") and not monitored(grid, "F-B")
    for prefix, minute in (("E-A1", 0), ("E-A2", 3), ("E-B1", 0), ("E-B2", 3)):
        for n in (1, 2, 3):
            call(grid, *kaifa(f"{prefix}-{n:02d}", f"10:0{minute + n - 1}"))
    assert_counts_are_recounts(grid)
    assert [row[:4] for row in picture(grid)] == [
        ("DP-A1", "distribution_point", "confirmed", 3), ("DP-A2", "distribution_point", "confirmed", 3),
        ("F-A", "feeder", "restored", 0), ("F-B", "feeder", "confirmed", 6)]


def test_an_informational_alarm_marks_nothing(grid):
    # A status report that names no outage or restoration term is stored, not checked: it marks no
    # feeder (only alarms the check acts on do).
    function, payload = scada("B", "09:00")
    payload = dict(payload, eventType="status_report", alarmType="info")
    call(grid, function, payload)
    assert not monitored(grid, "F-B")
