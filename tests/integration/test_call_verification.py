"""The meter-report veto for calls (issue 22): a customer calls, and their smart meter speaks (a Kaifa
communication event) within `oms_correlation.call_verify_window` (15 min by default) after the call.
The meter had power, so the trouble is on the customer's side (their own breaker): the call is no
evidence of an outage of the network's. What rested on it (its service outage, or a DP roll-up it
made) is never written, or withdrawn (`cancelled`, with a timeline entry saying why) when it was
written before the report came. A last gasp or a power-on of the meter between says it did lose
power: the report then answers nothing.

Ingest queues only the reports that can matter: a communication event of a meter a customer called
about within the window before it, and, when the call comes after the meter already spoke (a call
delayed on its way), the registry's `last_communication`, dated as it is. Every other communication
event stays what it was: a registry refresh, never a queue row.

On the engine grid (engine_grid.py): feeders F-A and F-B of DPs 1-4 of ten meters, each meter its
own customer, all last heard from at 09:59."""

import itertools

import pytest

from conftest import assert_setting_refused, query, scalar
from engine_grid import CORRELATING, at, build_grid, kaifa, play, ticket

ORDERS = ["as sent", "reversed"]
_ids = itertools.count(1)


@pytest.fixture
def grid(pool):
    build_grid(pool)
    return pool


def report(meter, hhmm, event_id=None):
    """The meter spoke: an IEC 61968-9 communication event (domain 23), power unchanged."""
    return CORRELATING["kaifa"], {"message_type": "EndDeviceEvent", "timestamp": at(hhmm), "payload": {
        "event_id": event_id or f"KF-{meter}-{hhmm}-comm-{next(_ids)}", "assets": {"ns2:mRID": meter},
        "event_type": {"@ref": "3.23.0.79"}, "severity": "low", "reason": "Meter read"}}


def outages(pool):
    """Every outage row of a meter's service, whatever its status: (meter, status, first detected)."""
    return query(pool, """SELECT m.meter_number, o.status, to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI:SS')
                          FROM oms_outage_events o JOIN oms_meters m ON o.device_key = 'service:meter:' || m.id
                          ORDER BY 1, 3""")


def standing(pool):
    return [row for row in outages(pool) if row[1] != "cancelled"]


def logged_reports(pool):
    return query(pool, """SELECT source_type, to_char(at AT TIME ZONE 'UTC', 'HH24:MI:SS')
                          FROM oms_correlation_inputs WHERE kind = 'report' ORDER BY 2, 1""")


@pytest.mark.parametrize("order", ORDERS)
def test_a_caller_whose_meter_reports_after_the_call_has_no_outage(grid, order):
    play(grid, [ticket("E-A3-05", "10:00:00"), report("E-A3-05", "10:05:00")], order)
    assert standing(grid) == []
    # No interruption either: the meter never lost power.
    assert scalar(grid, "SELECT count(*) FROM oms_momentary_interruptions") == 0
    if order == "as sent":
        # The call declared its outage at once; the report withdrew it, and the timeline says why.
        assert outages(grid) == [("E-A3-05", "cancelled", "10:00:00")]
        assert query(grid, """SELECT t.event_type, t.description LIKE '%%call_verify_window%%'
                              FROM oms_event_timeline t JOIN oms_outage_events o ON o.id = t.outage_event_id
                              WHERE t.event_type = 'withdrawn'""") == [("withdrawn", True)]
        assert logged_reports(grid) == [("kaifa", "10:05:00")]
    else:
        # The report came first: the call found the registry's fresher last_communication.
        assert outages(grid) == []
        assert logged_reports(grid) == [("call_center", "10:05:00")]


@pytest.mark.parametrize("order", ORDERS)
def test_other_calls_stand_and_a_report_outside_the_window_vetoes_nothing(grid, order):
    play(grid, [ticket("E-A3-05", "10:00:00"), ticket("E-B2-01", "10:00:00"), ticket("E-B3-01", "10:01:00"),
                report("E-A3-05", "10:14:00"),
                # 20 minutes after its call: power may have come back unheard; the call stands.
                report("E-B2-01", "10:20:00"),
                # Dated before its call: says nothing of the call's time.
                report("E-B3-01", "10:00:30")], order)
    # A call alone (weight 0.4) leaves an outage detected, not confirmed.
    assert standing(grid) == [("E-B2-01", "detected", "10:00:00"), ("E-B3-01", "detected", "10:01:00")]


@pytest.mark.parametrize("order", ORDERS)
def test_a_dp_roll_up_that_rested_on_an_answered_call_is_withdrawn(grid, order):
    # With the call, three meters of DP-A3 within the roll-up window; the call's meter then reports,
    # and two blips (the declaration delay at its default) are no DP fault.
    events = [ticket("E-A3-05", "10:00:00"),
              kaifa("E-A3-06", "10:00:20"), kaifa("E-A3-06", "10:00:40", restored=True),
              kaifa("E-A3-07", "10:02:00"), kaifa("E-A3-07", "10:02:30", restored=True),
              report("E-A3-05", "10:05:00")]
    play(grid, events, order, {"oms_correlation.declaration_delay": "60"})
    assert query(grid, "SELECT scope, status FROM oms_outage_events WHERE status <> 'cancelled'") == []
    assert query(grid, """SELECT m.meter_number FROM oms_momentary_interruptions i JOIN oms_meters m ON m.id = i.meter_id
                          ORDER BY 1""") == [("E-A3-06",), ("E-A3-07",)]
    if order == "as sent":
        # The call's service outage (merged into the roll-up) and the roll-up are both withdrawn.
        assert query(grid, """SELECT o.scope, t.description LIKE '%%call_verify_window%%'
                              FROM oms_event_timeline t JOIN oms_outage_events o ON o.id = t.outage_event_id
                              WHERE t.event_type = 'withdrawn' ORDER BY 1""") == [("distribution_point", True),
                                                                                    ("service", True)]


@pytest.mark.parametrize("order", ORDERS)
def test_the_report_answers_the_call_whatever_power_on_comes_late(grid, order):
    # A power-on of the meter dated between the call and the report, arriving last (or first): the
    # call is answered by the report alone, so no replay start can change the outcome.
    play(grid, [ticket("E-A3-05", "10:00:00"), report("E-A3-05", "10:05:00"),
                kaifa("E-A3-05", "10:03:00", restored=True)], order)
    assert standing(grid) == []


@pytest.mark.parametrize("order", ORDERS)
def test_a_last_gasp_is_the_networks_evidence_and_is_not_vetoed(grid, order):
    play(grid, [kaifa("E-A3-05", "10:00:00"), ticket("E-A3-05", "10:00:20"), report("E-A3-05", "10:05:00")], order)
    assert [row[:2] for row in standing(grid)] == [("E-A3-05", "confirmed")]


def test_a_communication_event_of_a_meter_nobody_called_about_is_never_queued(grid):
    play(grid, [report("E-A3-05", "10:05:00"), report("E-A4-01", "10:06:00")])
    assert logged_reports(grid) == []
    # Nothing of theirs reached the correlator (an upgraded base holds inputs of its own).
    assert scalar(grid, """SELECT count(*) FROM oms_correlation_inputs i JOIN oms_meters m ON m.id = ANY (i.meters)
                           WHERE m.meter_number IN ('E-A3-05', 'E-A4-01')""") == 0
    assert scalar(grid, "SELECT last_communication = %s::timestamptz FROM oms_meters WHERE meter_number = 'E-A3-05'",
                  (at("10:05:00"),))


def test_redelivered_reports_and_calls_are_weighed_once(grid):
    call, comm = ticket("E-A3-05", "10:00:00", ticket_id="TC-REDELIVERED"), \
        report("E-A3-05", "10:05:00", event_id="KF-REDELIVERED-COMM")
    play(grid, [call, call, comm, comm, call])
    assert outages(grid) == [("E-A3-05", "cancelled", "10:00:00")]
    assert logged_reports(grid) == [("kaifa", "10:05:00")]
    assert scalar(grid, "SELECT count(*) FROM oms_event_timeline WHERE event_type = 'withdrawn'") == 1


def test_a_window_of_zero_switches_the_veto_off(grid):
    play(grid, [ticket("E-A3-05", "10:00:00"), report("E-A3-05", "10:05:00")],
         settings={"oms_correlation.call_verify_window": "0"})
    assert standing(grid) == [("E-A3-05", "detected", "10:00:00")]
    assert logged_reports(grid) == []


@pytest.mark.parametrize("value", ["-1", "86401", "soon"])
def test_a_bad_window_is_refused_with_the_setting_named(pool, value):
    assert_setting_refused(pool, "call_verify_window", value)
