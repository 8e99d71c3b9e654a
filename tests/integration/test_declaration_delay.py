"""The outage declaration delay (issue 22): a service outage only a meter's own last gasp speaks for
(Kaifa, ONU; no call, no SCADA, no roll-up) is held for `oms_correlation.declaration_delay` (60 s by
default) before it is written. Back on within the delay, it was a momentary interruption of the
meter: a row of `oms_momentary_interruptions`, counted in MAIFI_E, never an outage row. A held
outage is written when event time passes its delay (any later signal), or, on a quiet network, when
the wall clock does (the worker, or `oms_correlate_pending()`).

The suite runs with the delay at 0 (conftest's `db`); every call here sets it. On the engine grid
(engine_grid.py): feeders F-A and F-B of DPs 1-4 of ten meters, each meter its own customer."""

import time

import pytest

from decimal import Decimal

import engine_grid
from conftest import assert_setting_refused, query, scalar
from engine_grid import build_grid, kaifa, picture, ticket

ORDERS = ["as sent", "reversed"]
DELAY = {"oms_correlation.declaration_delay": "60"}


@pytest.fixture
def grid(pool):
    build_grid(pool)
    return pool


def play(pool, events, order="as sent", settings=None):
    """`engine_grid.play` with the delay this file tests (the suite's databases have it at 0)."""
    engine_grid.play(pool, events, order, settings or DELAY)


def interruptions(pool):
    return query(pool, """SELECT m.meter_number, to_char(i.interrupted_at AT TIME ZONE 'UTC', 'HH24:MI:SS'),
                                 to_char(i.restored_at AT TIME ZONE 'UTC', 'HH24:MI:SS'), i.source_type
                          FROM oms_momentary_interruptions i JOIN oms_meters m ON m.id = i.meter_id ORDER BY 1, 2""")


def outage_rows(pool):
    """Every outage row, whatever its status: (device, status, first_detected_at)."""
    return query(pool, """SELECT coalesce(m.meter_number, o.device_key), o.status,
                                 to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI:SS')
                          FROM oms_outage_events o
                          LEFT JOIN oms_meters m ON o.device_key = 'service:meter:' || m.id
                          ORDER BY 1, 3""")


def pending_areas(pool):
    return scalar(pool, "SELECT areas_pending_declaration FROM oms_correlation_status")


@pytest.mark.parametrize("order", ORDERS)
def test_a_blip_within_the_delay_is_a_momentary_interruption_never_an_outage(grid, order):
    play(grid, [kaifa("E-A3-05", "10:00:00"), kaifa("E-A3-05", "10:00:40", restored=True)], order)
    assert outage_rows(grid) == []
    assert interruptions(grid) == [("E-A3-05", "10:00:00", "10:00:40", "kaifa")]
    assert pending_areas(grid) == 0
    # MAIFI_E: one momentary interruption over the customers served (IEEE 1366: events per customer).
    served, maifi, saifi = query(grid, """SELECT customers_served, maifi_e, saifi FROM oms_reliability_indices(
                                              '2025-10-01', '2025-10-02')""")[0]
    assert served > 0
    assert (maifi, saifi) == (round(Decimal(1) / served, 6), 0)


def test_a_lone_outage_is_held_until_event_time_passes_its_delay(grid):
    play(grid, [kaifa("E-A3-05", "10:00:00")])
    assert outage_rows(grid) == []
    assert pending_areas(grid) == 1
    # A last gasp on the other feeder at 10:02: event time has passed E-A3-05's minute. Its outage
    # is written, begun at 10:00; E-B1-01's own is held in turn.
    play(grid, [kaifa("E-B1-01", "10:02:00")])
    assert outage_rows(grid) == [("E-A3-05", "confirmed", "10:00:00")]
    assert pending_areas(grid) == 1
    assert [row[:4] for row in picture(grid)] == [("E-A3-05", "service", "confirmed", 1)]
    assert interruptions(grid) == []


def test_on_a_quiet_network_the_wall_clock_declares_it(grid):
    settings = {"oms_correlation.declaration_delay": "1"}
    play(grid, [kaifa("E-A3-05", "10:00:00")], settings=settings)
    assert outage_rows(grid) == []
    # Nothing else comes: after a second of wall-clock time the area falls due (the worker, or here
    # oms_correlate_pending(), replays it).
    deadline = time.monotonic() + 20
    while True:
        query(grid, "SELECT * FROM oms_correlate_pending()")
        if outage_rows(grid):
            break
        assert time.monotonic() < deadline, "the held outage was never declared"
        time.sleep(0.2)
    assert outage_rows(grid) == [("E-A3-05", "confirmed", "10:00:00")]
    assert pending_areas(grid) == 0


@pytest.mark.parametrize("order", ORDERS)
def test_a_call_declares_at_once_and_a_called_blip_stays_an_outage(grid, order):
    play(grid, [kaifa("E-A3-05", "10:00:00"), ticket("E-A3-05", "10:00:20")], order)
    assert outage_rows(grid) == [("E-A3-05", "confirmed", "10:00:00")]
    assert pending_areas(grid) == 0
    explanation = scalar(grid, "SELECT oms_outage_explain(id) FROM oms_outage_events")
    assert explanation["rule"]["name"] == "service"
    assert set(explanation["rule"]["thresholds"]) == {"declaration_delay"}
    # Back on within the delay: a call spoke for it, so it is a (momentary) outage, not a blip.
    play(grid, [kaifa("E-A3-05", "10:00:40", restored=True)])
    assert outage_rows(grid) == [("E-A3-05", "restored", "10:00:00")]
    assert interruptions(grid) == []


@pytest.mark.parametrize("order", ORDERS)
def test_a_dp_worth_of_meters_is_declared_at_once(grid, order):
    play(grid, [kaifa("E-A2-01", "10:00:00"), kaifa("E-A2-02", "10:00:05"), kaifa("E-A2-03", "10:00:10")], order)
    assert outage_rows(grid) == [("dp:" + scalar(grid, "SELECT id::text FROM network_distribution_points "
                                                       "WHERE dp_id = 'DP-A2'"), "confirmed", "10:00:00")]
    assert pending_areas(grid) == 0


def test_a_power_on_that_comes_after_the_declaration_withdraws_the_outage(grid):
    # E-A3-05's outage is written once event time passes 10:01; its power-on, dated 10:00:30,
    # arrives after that: it was a blip after all. The row is withdrawn, the interruption recorded.
    play(grid, [kaifa("E-A3-05", "10:00:00"), kaifa("E-B1-01", "10:02:00")])
    assert outage_rows(grid)[0] == ("E-A3-05", "confirmed", "10:00:00")
    play(grid, [kaifa("E-A3-05", "10:00:30", restored=True)])
    assert outage_rows(grid)[0] == ("E-A3-05", "cancelled", "10:00:00")
    assert interruptions(grid) == [("E-A3-05", "10:00:00", "10:00:30", "kaifa")]
    assert query(grid, """SELECT t.event_type, t.description FROM oms_event_timeline t
                          JOIN oms_outage_events o ON o.id = t.outage_event_id
                          WHERE o.status = 'cancelled' AND t.event_type = 'withdrawn'""") == [
        ("withdrawn", "Withdrawn: its meters came back within the declaration delay (a momentary interruption)")]


@pytest.mark.parametrize("order", ORDERS)
def test_a_redelivered_blip_is_one_interruption(grid, order):
    off = kaifa("E-A3-05", "10:00:00", event_id="KF-BLIP-OFF")
    back = kaifa("E-A3-05", "10:00:40", restored=True, event_id="KF-BLIP-ON")
    play(grid, [off, back, off, back], order)
    assert interruptions(grid) == [("E-A3-05", "10:00:00", "10:00:40", "kaifa")]
    assert outage_rows(grid) == []


@pytest.mark.parametrize("value", ["-1", "3601", "soon"])
def test_a_bad_delay_is_refused_with_the_setting_named(pool, value):
    assert_setting_refused(pool, "declaration_delay", value)
