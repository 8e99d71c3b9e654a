"""Negative evidence from SCADA (issue 22, SPEC §5.3): a feeder whose breaker reports to SCADA is
never predicted out. Its meters' outages roll up to their DPs, never to the feeder, unless the
feeder's own trip says it opened. A DBA marks such feeders (`network_feeders.scada_monitored`);
the first outage or restoration alarm that names a feeder marks it too.

On the engine grid (engine_grid.py): F-B has DPs DP-B1..DP-B4 of ten meters each. Unmonitored,
two of its DPs out within five minutes roll it up (test_correlation_engine.py,
test_two_dps_of_a_feeder_roll_up_to_the_feeder). Each scenario is played as sent and reversed."""

import pytest

from conftest import call, query, scalar
from engine_grid import assert_counts_are_recounts, build_grid, kaifa, picture, play, scada

ORDERS = ["as sent", "reversed"]


@pytest.fixture
def grid(pool):
    build_grid(pool)
    return pool


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


# --- oms_outage_explain ----------------------------------------------------------------------------

def explain(pool, device):
    """The explanation of the outage at `device` (as picture() names it), by its device key."""
    row = query(pool, """SELECT oms_outage_explain(o.id) FROM oms_outage_events o
                         LEFT JOIN network_distribution_points dp ON dp.id = o.dp_id
                         LEFT JOIN network_feeders f ON f.id = o.feeder_id
                         WHERE o.status <> 'merged'
                           AND CASE o.scope WHEN 'distribution_point' THEN dp.dp_id WHEN 'feeder' THEN f.feeder_id END = %s""",
                (device,))
    assert len(row) == 1, (device, row)
    return row[0][0]


def kaifa_evidence(explanation):
    """(source, meter, HH:MI, weight, power) of each piece of evidence; engine_grid's Kaifa event ids
    are KF-<meter>-<time>-<off|on>-<n>."""
    return [(e["source_type"], "-".join(e["source_event_id"].split("-")[1:4]), e["at"][11:16], e["weight"], e["power"])
            for e in explanation["evidence"]]


@pytest.mark.parametrize("order", ORDERS)
def test_a_dp_outage_explains_its_rule_its_evidence_and_the_veto_that_kept_it_there(grid, order):
    # DP-B1's outage from the monitored-feeder scenario: placed by the DP roll-up (three meters of
    # two services or more within the window: the thresholds as set), from its three Kaifa last
    # gasps (weight 0.80 each, as oms_correlation_rules has it), kept at the DP by F-B's telemetry,
    # with DP-B2's outage the other one within the window.
    query(grid, "UPDATE network_feeders SET scada_monitored = true WHERE feeder_id = 'F-B'")
    play(grid, two_dps_of_f_b(), order)
    e = explain(grid, "DP-B1")
    assert (e["scope"], e["status"], e["meters"], e["affected_customers_count"], e["confidence"]) == (
        "distribution_point", "confirmed", 3, 3, 0.99)
    assert e["rule"]["name"] == "dp_rollup"
    assert e["rule"]["thresholds"] == {"rollup_window": "5min", "rollup_min_meters": 3, "rollup_dp_min_share": 0.25,
                                       "rollup_dp_fraction": 0.5, "mismap_window": "10s"}
    assert e["suspected_mismapped"] == []
    assert kaifa_evidence(e) == [("kaifa", "E-B1-01", "10:00", 0.8, "off"), ("kaifa", "E-B1-02", "10:01", 0.8, "off"),
                                 ("kaifa", "E-B1-03", "10:02", 0.8, "off")]
    (veto,) = e["vetoes"]
    assert (veto["rule"], veto["feeder"], veto["dp_outages_within_rollup_window"]) == ("scada_monitored", "F-B", 2)
    # Each signal is its own batch: the first two meters' service outages were written, then taken in
    # by the roll-up (the third meter's was opened and merged in its batch, never written).
    assert sorted(t["scope"] for t in e["took_in"]) == ["service", "service"]


def test_an_unmonitored_dp_outage_has_no_veto_and_a_feeder_roll_up_explains_its_own_rule(grid):
    # F-B unmonitored: the same signals roll it up (two DP outages within five minutes, the
    # feeder's thresholds). Each signal is its own batch: DP-B1's outage was written (it took in its
    # first two meters' service outages); DP-B2's was opened by the sixth signal and merged into
    # the feeder's in that batch, never written, so the feeder took in DP-B1's outage and DP-B2's two
    # written service outages directly.
    play(grid, two_dps_of_f_b(), "as sent")
    e = explain(grid, "F-B")
    assert e["rule"]["name"] == "feeder_rollup"
    assert e["rule"]["thresholds"] == {"rollup_window": "5min", "rollup_min_children": 2, "rollup_feeder_fraction": 0.3}
    assert e["vetoes"] == []
    assert [s[:2] for s in kaifa_evidence(e)] == [("kaifa", f"E-B{d}-0{n}") for d in (1, 2) for n in (1, 2, 3)]
    assert sorted(t["scope"] for t in e["took_in"]) == ["distribution_point", "service", "service"]


def test_explaining_an_unknown_outage_gives_null(grid):
    assert scalar(grid, "SELECT oms_outage_explain(gen_random_uuid())") is None
