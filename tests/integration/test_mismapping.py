"""Suspected mapping errors (issue 22, SPEC §5.3): a meter off alone under the DP the registry
names, within `mismap_window` (10 s) of a DP outage elsewhere on its feeder, is out in that outage,
marked suspected mis-mapped, and opens no outage of its own. `oms_suspected_mismapped_meters` lists
such meters for the GIS team; `oms_outage_explain` names them in their outage.

On the engine grid (engine_grid.py): feeder F-A has DPs DP-A1..DP-A4 of ten meters each; three
meters of a DP off within five minutes roll it up. Each scenario is played as sent and reversed."""

import pytest

from conftest import query, scalar
from engine_grid import build_grid, kaifa, picture, play, ticket

ORDERS = ["as sent", "reversed"]


@pytest.fixture
def grid(pool):
    build_grid(pool)
    return pool


def dp_a1_and(meter, hhmm):
    """DP-A1's meters 1-3 off at 10:00 (it rolls up), and `meter` at `hhmm`."""
    return [kaifa("E-A1-01", "10:00"), kaifa(meter, hhmm), kaifa("E-A1-02", "10:00"), kaifa("E-A1-03", "10:00")]


@pytest.mark.parametrize("order", ORDERS)
def test_a_lone_meter_in_step_with_a_dp_outage_is_taken_in_as_suspected_and_listed(grid, order):
    # E-A3-05, registered under DP-A3, goes at DP-A1's second and no other meter of DP-A3 does: it
    # is out in DP-A1's outage (four meters, four customers), suspected mis-mapped.
    play(grid, dp_a1_and("E-A3-05", "10:00"), order)
    assert [row[:5] + (row[8],) for row in picture(grid)] == [
        ("DP-A1", "distribution_point", "confirmed", 4, 4, ["E-A1-01", "E-A1-02", "E-A1-03", "E-A3-05"])]
    assert query(grid, """SELECT meter_number, registered_dp, times_suspected, matched_dps,
                                 to_char(last_suspected_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_suspected_mismapped_meters""") == [("E-A3-05", "DP-A3", 1, ["DP-A1"], "10:00")]
    explanation = scalar(grid, "SELECT oms_outage_explain(id) FROM oms_outage_events WHERE scope = 'distribution_point'")
    assert [(m["meter_number"], m["registered_dp"]) for m in explanation["suspected_mismapped"]] == [("E-A3-05", "DP-A3")]


@pytest.mark.parametrize("order", ORDERS)
def test_a_meter_out_of_step_opens_its_own_outage(grid, order):
    # E-A3-05 goes a minute after DP-A1's outage began: beyond mismap_window, an outage of its own,
    # and nothing is listed.
    play(grid, dp_a1_and("E-A3-05", "10:01"), order)
    assert [row[:4] for row in picture(grid)] == [
        ("DP-A1", "distribution_point", "confirmed", 3), ("E-A3-05", "service", "confirmed", 1)]
    assert scalar(grid, "SELECT count(*) FROM oms_suspected_mismapped_meters") == 0


@pytest.mark.parametrize("order", ORDERS)
def test_mismap_window_zero_switches_the_rule_off(grid, order):
    play(grid, dp_a1_and("E-A3-05", "10:00"), order, settings={"oms_correlation.mismap_window": "0"})
    assert [row[:4] for row in picture(grid)] == [
        ("DP-A1", "distribution_point", "confirmed", 3), ("E-A3-05", "service", "confirmed", 1)]
    assert scalar(grid, "SELECT count(*) FROM oms_suspected_mismapped_meters") == 0


@pytest.mark.parametrize("order", ORDERS)
def test_two_meters_of_a_dp_in_step_too_few_to_roll_it_up_are_both_suspected(grid, order):
    # E-A3-05 and E-A3-06 go with DP-A1: two of DP-A3's ten meters do not roll it up, and a fault of
    # DP-A3 would not take two of its meters alone: both are out in DP-A1's outage, suspected.
    play(grid, dp_a1_and("E-A3-05", "10:00") + [kaifa("E-A3-06", "10:00")], order)
    assert [row[:5] for row in picture(grid)] == [("DP-A1", "distribution_point", "confirmed", 5, 5)]
    assert query(grid, "SELECT meter_number, registered_dp, matched_dps FROM oms_suspected_mismapped_meters "
                       "ORDER BY 1") == [("E-A3-05", "DP-A3", ["DP-A1"]), ("E-A3-06", "DP-A3", ["DP-A1"])]


def dp_a1_out_and_back():
    """DP-A1's meters 1-3 off at 10:00 (it rolls up) and back at 10:40."""
    meters = ["E-A1-01", "E-A1-02", "E-A1-03"]
    return [kaifa(m, "10:00") for m in meters] + [kaifa(m, "10:40", restored=True) for m in meters]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("back", ["10:40:05", "10:39:55"])
def test_a_callers_meter_back_in_step_with_a_dp_outage_is_taken_in_as_suspected(grid, order, back):
    # E-A3-05 (registered under DP-A3) sent no last gasp; its customer called at 10:12. Its meter
    # comes back within mismap_window of DP-A1's: it was out in DP-A1's fault. The call's outage is
    # merged into DP-A1's (four customers, the meter suspected), which keeps its own end.
    play(grid, dp_a1_out_and_back() + [ticket("E-A3-05", "10:12"), kaifa("E-A3-05", back, restored=True)], order)
    assert [row[:4] + (row[8],) for row in picture(grid)] == [
        ("DP-A1", "distribution_point", "restored", 4, ["E-A1-01", "E-A1-02", "E-A1-03", "E-A3-05"])]
    assert scalar(grid, """SELECT to_char(actual_restoration_time AT TIME ZONE 'UTC', 'HH24:MI:SS')
                           FROM oms_outage_events WHERE scope = 'distribution_point'""") == "10:40:00"
    assert query(grid, "SELECT meter_number, registered_dp, times_suspected, matched_dps "
                       "FROM oms_suspected_mismapped_meters") == [("E-A3-05", "DP-A3", 1, ["DP-A1"])]
    explanation = scalar(grid, "SELECT oms_outage_explain(id) FROM oms_outage_events WHERE scope = 'distribution_point'")
    assert [(m["meter_number"], m["registered_dp"]) for m in explanation["suspected_mismapped"]] == [("E-A3-05", "DP-A3")]
    assert query(grid, """SELECT o.scope, o.status, into_.scope FROM oms_outage_events o
                          JOIN oms_outage_events into_ ON into_.id = o.merged_into
                          JOIN oms_meters m ON o.device_key = 'service:meter:' || m.id
                          WHERE m.meter_number = 'E-A3-05'""") == [("service", "merged", "distribution_point")]
    told = dict(query(grid, """SELECT t.event_type, count(*) FROM oms_event_timeline t
                               JOIN oms_outage_events o ON o.id = t.outage_event_id
                               WHERE o.scope = 'distribution_point'
                                 AND (t.event_type = 'recorrelated'
                                      OR t.description LIKE '%%its meter came back in step with this DP''s outage%%')
                               GROUP BY 1"""))
    if order == "as sent" and back > "10:40":
        # Its power-on, the last signal, took it in: the timeline gives the rule.
        assert told == {"outages_merged": 1}
    else:
        # Or a signal replayed late did (SPEC §5.3: correlated again after a late signal).
        assert told, "the take-in is on the DP outage's timeline"


@pytest.mark.parametrize("order", ORDERS)
def test_a_callers_meter_back_out_of_step_keeps_its_own_outage(grid, order):
    play(grid, dp_a1_out_and_back() + [ticket("E-A3-05", "10:12"), kaifa("E-A3-05", "10:42", restored=True)], order)
    assert [row[:4] for row in picture(grid)] == [
        ("DP-A1", "distribution_point", "restored", 3), ("E-A3-05", "service", "restored", 1)]
    assert scalar(grid, "SELECT count(*) FROM oms_suspected_mismapped_meters") == 0
