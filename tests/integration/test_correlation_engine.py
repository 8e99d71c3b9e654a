"""The correlation engine (issues 11 and 21, SPEC §5.1-5.4, 5.8, 5.9), through the ingest functions as
the consumers call them, on the engine grid (engine_grid.py).

Each scenario writes out the outages it must end with, worked out by hand from the rules and the
grid, and is played twice: as sent, and in reverse arrival order (`order`; a few name their arrival
orders themselves, the reverse among them). Both must end the same, since outcomes depend on event
times, never on arrival order. The exceptions are marked "One order only", and say why. A reversed
play that ends otherwise is an engine bug: it is marked xfail (strict), with what differs. Merged
outages are history: they are counted where the order fixes them, and otherwise left out of the
comparison.

Each call is its own correlator batch here (`call` waits for the correlator in deferred mode), and
an outage opened and merged within one batch is never written (SPEC §5.8): the signal that rolls a
DP up opens its own service outage and merges it in the same batch, so that one is never a row."""

import json

import pytest

from conftest import assert_setting_refused, call, heard, listen, query, scalar
from engine_grid import (assert_counts_are_recounts, build_grid, kaifa, merged_count, onu, picture, play, scada,
                         ticket)

ORDERS = ["as sent", "reversed"]
# The engine bug behind every reversed play marked xfail below.
TRIP_READS_THE_REGISTRY = ("engine bug: a SCADA trip judges which meters it affects on the registry as it stands "
                           "when the trip arrives, not at the trip's time (SPEC §5: never on arrival order). ")


def reversed_fails(reason):
    """ORDERS, the reversed play expected to fail on an engine bug: `reason` says what differs."""
    return ["as sent", pytest.param("reversed", marks=pytest.mark.xfail(strict=True, reason=reason))]


@pytest.fixture
def grid(pool):
    build_grid(pool)
    return pool


def meters(prefix, numbers):
    return [f"{prefix}-{n:02d}" for n in numbers]


# --- the scenarios -------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ORDERS)
def test_one_onu_building_is_one_service_outage(grid, order):
    # The ONU's last gasp takes the building's two meters; a Kaifa last gasp for one of them adds a
    # source, not a meter. 2 of DP-A1's 10 meters roll nothing up. Confidence 1-(1-0.6)(1-0.8).
    play(grid, [onu(9001, "10:00"), kaifa("E-A1-01", "10:01")], order)
    assert picture(grid) == [
        ("onu:9001", "service", "confirmed", 2, 2, "0.92", "10:00", None, ["E-A1-01", "E-A1-02"], None)]
    assert merged_count(grid) == 0


@pytest.mark.parametrize("order", ORDERS)
def test_three_meters_under_one_dp_roll_up_to_the_dp(grid, order):
    # Three distinct meters of DP-A2 off within five minutes: their service outages merge into one
    # DP outage. Confidence over the three sources: 1-(0.2)(0.2)(0.6) = 0.976.
    play(grid, [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:01"), ticket("E-A2-03", "10:02")], order)
    assert picture(grid) == [
        ("DP-A2", "distribution_point", "confirmed", 3, 3, "0.98", "10:00", None, meters("E-A2", [1, 2, 3]), None)]
    dp_outage = scalar(grid, "SELECT id FROM oms_outage_events WHERE scope = 'distribution_point'")
    if order == "as sent":
        # The first two service outages were written, then merged; the third signal's own service
        # outage was opened and merged in its batch, never written.
        assert merged_count(grid) == 2
        # The survivor's timeline records the merge; each merged outage points to it.
        assert query(grid, "SELECT count(*), count(*) FILTER (WHERE merged_into = %s) FROM oms_outage_events "
                           "WHERE status = 'merged'", (dp_outage,)) == [(2, 2)]
        assert query(grid, "SELECT metadata -> 'merged' FROM oms_event_timeline WHERE outage_event_id = %s "
                           "AND event_type = 'outages_merged'", (dp_outage,))[0][0].__len__() == 2
    # Its sources moved with them.
    assert scalar(grid, "SELECT count(*) FROM oms_event_sources WHERE outage_event_id = %s", (dp_outage,)) == 3


@pytest.mark.parametrize("order", ORDERS)
def test_two_dps_of_a_feeder_roll_up_to_the_feeder(grid, order):
    # DP-B1 (10:00-10:02) and DP-B2 (10:03-10:05) each roll up; their outages began within five
    # minutes of each other, so F-B rolls up (6 of 40 meters is below 30 %: the DPs decide it).
    events = [kaifa(m, t) for m, t in zip(meters("E-B1", [1, 2, 3]) + meters("E-B2", [1, 2, 3]),
                                          ["10:00", "10:01", "10:02", "10:03", "10:04", "10:05"])]
    play(grid, events, order)
    assert picture(grid) == [
        ("F-B", "feeder", "confirmed", 6, 6, "1.00", "10:00", None,
         meters("E-B1", [1, 2, 3]) + meters("E-B2", [1, 2, 3]), None)]
    if order == "as sent":
        # Of six service outages and two DP outages, the third signal's of each DP was opened and
        # merged in its batch, and DP-B2's outage went into the feeder's in the batch that opened
        # it: five were written and merged.
        assert merged_count(grid) == 5


@pytest.mark.parametrize("order", ORDERS)
def test_the_signal_that_rolls_its_feeder_up_is_stored_once(grid, order):
    # The sixth signal finds F-B's roll-up due while it holds the feeder's lock shared; its ingest
    # runs again from the start with the feeder exclusive. What the first attempt wrote is taken
    # back with its subtransaction: every row of the event exists once.
    events = [kaifa(m, t) for m, t in zip(meters("E-B1", [1, 2, 3]) + meters("E-B2", [1, 2, 3]),
                                          ["10:00", "10:01", "10:02", "10:03", "10:04", "10:05"])]
    play(grid, events, order)
    assert scalar(grid, "SELECT count(*) FROM oms_outage_events WHERE scope = 'feeder'") == 1
    assert scalar(grid, "SELECT count(*) FROM kaifa_events") == 6
    assert query(grid, "SELECT count(*), count(DISTINCT meter_id) FROM oms_meter_status_events "
                       "WHERE event_type = 'power_off'") == [(6, 6)]
    assert scalar(grid, "SELECT sum(signals) FROM oms_signal_rate") == 6
    assert scalar(grid, "SELECT count(*) FROM oms_event_sources") == 6
    assert scalar(grid, "SELECT count(*) FROM oms_event_timeline WHERE event_type = 'outages_merged' "
                        "AND outage_event_id = (SELECT id FROM oms_outage_events WHERE scope = 'feeder')") == 1


@pytest.mark.parametrize("order", ORDERS)
def test_a_call_center_report_alone_is_a_service_outage_at_0_4_that_later_evidence_joins(grid, order):
    events = [ticket("E-A3-01", "10:00"), kaifa("E-A3-01", "10:03")]
    if order == "as sent":
        call(grid, *events[0])
        assert picture(grid) == [("E-A3-01", "service", "detected", 1, 1, "0.40", "10:00", None, ["E-A3-01"], None)]
        call(grid, *events[1])
    else:
        play(grid, events, order)
    assert picture(grid) == [("E-A3-01", "service", "confirmed", 1, 1, "0.88", "10:00", None, ["E-A3-01"], None)]
    assert_counts_are_recounts(grid)


@pytest.mark.parametrize("order", ORDERS)
def test_scada_absorbs_the_predicted_outages_under_its_feeder(grid, order):
    # Predictions on F-A: DP-A4 rolls up, and ONU 9001's building has its service outage. The breaker
    # trip on F-A is authoritative: one confirmed feeder outage holds all five meters. Reversed, the
    # trip comes first, finds every meter fresh (none affected), and the meters join it.
    events = [kaifa("E-A4-01", "10:00"), kaifa("E-A4-02", "10:01"), kaifa("E-A4-03", "10:02"),
              onu(9001, "10:03"), scada("A", "10:04")]
    play(grid, events, order)
    assert picture(grid) == [
        ("F-A", "feeder", "confirmed", 5, 5, "1.00", "10:00", None,
         ["E-A1-01", "E-A1-02"] + meters("E-A4", [1, 2, 3]), None)]
    if order == "as sent":
        # Two services into DP-A4 (the third opened and merged in its batch); DP-A4 and the
        # building into the trip's outage.
        assert merged_count(grid) == 4
        assert scalar(grid, "SELECT count(*) FROM oms_event_timeline WHERE event_type = 'outages_merged' "
                            "AND description LIKE '%absorbed by the SCADA outage%'") == 1


@pytest.mark.parametrize("order", ORDERS)
def test_step_and_full_restoration(grid, order):
    off = [kaifa(m, t) for m, t in zip(meters("E-A2", [1, 2, 3]), ["10:00", "10:01", "10:02"])]
    on = [kaifa(m, t, restored=True) for m, t in zip(meters("E-A2", [1, 2, 3]), ["10:20", "10:21", "10:22"])]
    if order == "as sent":
        play(grid, off + on[:1])
        # One meter back: the outage is still open, two customers out, and the step is on the timeline.
        assert picture(grid) == [("DP-A2", "distribution_point", "confirmed", 3, 2, "0.99", "10:00", None,
                                  meters("E-A2", [1, 2, 3]), None)]
        play(grid, on[1:])
        steps = query(grid, """SELECT (metadata ->> 'meters_back')::int, (metadata ->> 'customers_out')::int
                               FROM oms_event_timeline t JOIN oms_outage_events o ON o.id = t.outage_event_id
                               WHERE o.scope = 'distribution_point' AND t.event_type = 'partially_restored'
                               ORDER BY t."timestamp" """)
        assert steps == [(1, 2), (1, 1), (1, 0)]
    else:
        play(grid, off + on, order)
    # Restored at the last meter's on time; the customers it interrupted stay counted.
    assert picture(grid) == [("DP-A2", "distribution_point", "restored", 3, 0, "0.99", "10:00", "10:22",
                              meters("E-A2", [1, 2, 3]), None)]
    assert query(grid, """SELECT to_char(om.off_at AT TIME ZONE 'UTC', 'HH24:MI'), to_char(om.on_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_outage_meters om JOIN oms_outage_events o ON o.id = om.outage_id
                          WHERE o.scope = 'distribution_point' ORDER BY 1""") == [
        ("10:00", "10:20"), ("10:01", "10:21"), ("10:02", "10:22")]
    assert query(grid, """SELECT count(*), count(restored_at) FROM oms_outage_customers oc
                          JOIN oms_outage_events o ON o.id = oc.outage_id WHERE o.scope = 'distribution_point'""") == [
        (3, 3)]


@pytest.mark.parametrize("order", ORDERS)
def test_a_meter_off_again_soon_after_its_restoration_opens_a_nested_outage(grid, order):
    play(grid, [kaifa("E-A3-05", "10:00"), kaifa("E-A3-05", "10:05", restored=True), kaifa("E-A3-05", "10:10")],
         order)
    assert picture(grid) == [
        ("E-A3-05", "service", "restored", 1, 0, "0.80", "10:00", "10:05", ["E-A3-05"], None),
        ("E-A3-05", "service", "confirmed", 1, 1, "0.80", "10:10", None, ["E-A3-05"], "10:00")]


@pytest.mark.parametrize("order", ORDERS)
def test_a_redelivered_signal_adds_nothing(grid, order):
    events = [onu(9001, "10:00"), kaifa("E-A1-01", "10:01", event_id="KF-ONCE")]
    play(grid, events + events, order)
    assert picture(grid) == [
        ("onu:9001", "service", "confirmed", 2, 2, "0.92", "10:00", None, ["E-A1-01", "E-A1-02"], None)]
    assert scalar(grid, "SELECT count(*) FROM oms_event_sources es JOIN oms_outage_events o ON o.id = es.outage_event_id "
                        "WHERE o.device_key = 'service:onu:9001'") == 2


@pytest.mark.parametrize("order", ORDERS)
def test_a_power_on_for_a_meter_in_no_outage_changes_no_outage(grid, order):
    play(grid, [kaifa("E-B3-01", "10:00", restored=True), onu(9001, "10:01", restored=True)], order)
    assert picture(grid) == []


@pytest.mark.parametrize("order", ORDERS)
def test_scada_restoration_restores_the_absorbing_outage_and_all_its_meters(grid, order):
    play(grid, [kaifa("E-A4-01", "10:00"), onu(9001, "10:03"), scada("A", "10:04"), scada("A", "10:30", restoration=True)],
         order)
    assert picture(grid) == [("F-A", "feeder", "restored", 3, 0, "1.00", "10:00", "10:30",
                              ["E-A1-01", "E-A1-02", "E-A4-01"], None)]
    assert query(grid, "SELECT DISTINCT power_status FROM oms_meters WHERE meter_number IN ('E-A1-01', 'E-A1-02', 'E-A4-01')") == [
        ("on",)]


# --- the settings (each away from its default; the scenarios above are the defaults) --------------

def three_under_dp_a2():
    return [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:01"), kaifa("E-A2-03", "10:02")]


@pytest.mark.parametrize("order", ORDERS)
def test_rollup_min_meters(grid, order):
    play(grid, three_under_dp_a2(), order, settings={"oms_correlation.rollup_min_meters": "4"})
    assert [row[1] for row in picture(grid)] == ["service"] * 3


@pytest.mark.parametrize("order", ORDERS)
def test_rollup_dp_fraction(grid, order):
    # Two of DP-A2's ten meters are 20 %.
    play(grid, three_under_dp_a2()[:2], order, settings={"oms_correlation.rollup_dp_fraction": "0.2"})
    assert [row[:2] for row in picture(grid)] == [("DP-A2", "distribution_point")]


@pytest.mark.parametrize("order", ORDERS)
def test_rollup_dp_min_share(grid, order):
    # Three of DP-A2's ten meters are 30 %: enough for the default quarter (above), not for 40 %.
    play(grid, three_under_dp_a2(), order, settings={"oms_correlation.rollup_dp_min_share": "0.4"})
    assert [row[1] for row in picture(grid)] == ["service"] * 3


@pytest.mark.parametrize("value", ["-0.1", "1.5", "lots"])
def test_a_bad_min_share_is_refused_with_the_setting_named(pool, value):
    assert_setting_refused(pool, "rollup_dp_min_share", value)


@pytest.mark.parametrize("order", ORDERS)
def test_rollup_window(grid, order):
    # At most two of the three went off within any one minute.
    play(grid, three_under_dp_a2(), order, settings={"oms_correlation.rollup_window": "60s"})
    assert [row[1] for row in picture(grid)] == ["service"] * 3


@pytest.mark.parametrize("order", ORDERS)
def test_rollup_min_children(grid, order):
    events = [kaifa(m, "10:00") for m in meters("E-B1", [1, 2, 3]) + meters("E-B2", [1, 2, 3])]
    play(grid, events, order, settings={"oms_correlation.rollup_min_children": "3"})
    assert [row[:2] for row in picture(grid)] == [("DP-B1", "distribution_point"), ("DP-B2", "distribution_point")]


@pytest.mark.parametrize("meters_name_the_feeder", [True, False])
@pytest.mark.parametrize("fraction, rolls_up", [("0.1", True), ("0.11", False)])
@pytest.mark.parametrize("order", ORDERS)
def test_rollup_feeder_fraction(grid, order, meters_name_the_feeder, fraction, rolls_up):
    # One meter in each of F-B's four DPs: 4 of 40 meters is 10 %. The 40 are counted whether the
    # meters name their feeder or hang on it only through their DPs.
    if not meters_name_the_feeder:
        query(grid, "UPDATE oms_meters SET feeder_id = NULL, substation_id = NULL WHERE meter_number LIKE 'E-B%'")
    events = [kaifa(f"E-B{d}-01", "10:00") for d in range(1, 5)]
    play(grid, events, order, settings={"oms_correlation.rollup_feeder_fraction": fraction})
    expected = ([("F-B", "feeder", "confirmed", 4)] if rolls_up
                else [(f"E-B{d}-01", "service", "confirmed", 1) for d in range(1, 5)])
    assert [row[:4] for row in picture(grid)] == expected


@pytest.mark.parametrize("order", ORDERS)
def test_join_window(grid, order):
    # The trip's outage starts at 10:04; a last gasp from 10:00 is earlier by more than a minute.
    play(grid, [scada("A", "10:04"), kaifa("E-A3-01", "10:00")], order, settings={"oms_correlation.join_window": "60s"})
    assert [row[:2] for row in picture(grid)] == [("E-A3-01", "service"), ("F-A", "feeder")]


@pytest.mark.parametrize("order", ORDERS)
def test_nested_window(grid, order):
    play(grid, [kaifa("E-A3-05", "10:00"), kaifa("E-A3-05", "10:05", restored=True), kaifa("E-A3-05", "10:10")],
         order, settings={"oms_correlation.nested_window": "60s"})
    assert [row[9] for row in picture(grid)] == [None, None]


# One order only: one signal, its own reverse.
def test_confirm_confidence(grid):
    play(grid, [kaifa("E-A3-01", "10:00")], settings={"oms_correlation.confirm_confidence": "0.95"})
    assert [row[2] for row in picture(grid)] == ["detected"]


# --- the stream and the legacy entry point --------------------------------------------------------

# One order only: the messages follow the batches, which follow arrival, and the operator's change
# comes after the signals.
def test_every_change_is_announced_to_a_listening_client(grid, db):
    listener = listen(db)
    events = [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:01"), ticket("E-A2-03", "10:02", ticket_id="TC-ENG-3")]
    play(grid, events)
    dp_outage = scalar(grid, "SELECT id::text FROM oms_outage_events WHERE scope = 'distribution_point'")
    # An operator's status change through the operations API.
    query(grid, "UPDATE oms_outage_events SET status = 'in_progress', last_updated_at = now() WHERE id = %s", (dp_outage,))
    messages = heard(listener, db)
    listener.close()
    assert all(m.channel == "oms_outage" and len(m.payload.encode()) < 8000 for m in messages)
    notes = [json.loads(m.payload) for m in messages]
    for note in notes:
        assert {"outage_event_id", "event_id", "change", "changes", "status", "scope", "device_key",
                "affected_customers_count", "customers_out", "confidence"} <= set(note)
    # Each batch announces each outage it changed once, as the batch left it (SPEC §5.8). The third
    # signal's batch: its own service outage was opened and merged there, never written nor
    # announced; the two service outages written before are merged, and the DP outage is new.
    assert [(n["change"], n["changes"], n["scope"], n["status"]) for n in notes] == [
        ("opened", ["opened", "confirmed"], "service", "confirmed"),
        ("opened", ["opened", "confirmed"], "service", "confirmed"),
        ("merged", ["merged"], "service", "merged"), ("merged", ["merged"], "service", "merged"),
        ("opened", ["opened", "absorbed", "confirmed"], "distribution_point", "confirmed"),
        ("status_set", ["status_set"], "distribution_point", "in_progress")]
    assert {n["merged_into"] for n in notes if n["change"] == "merged"} == {dp_outage}
    assert [n["source_type"] for n in notes][-2:] == ["call_center", "operator"]
    assert notes[-2]["affected_customers_count"] == 3 and notes[-2]["confidence"] == 0.98
    assert notes[-2]["rule"] == "dp_rollup"


@pytest.mark.parametrize("order", ORDERS)
def test_correlate_events_returns_the_outage_the_ingest_correlated_into(grid, order):
    events = [kaifa("E-A2-01", "10:00", event_id="urn:uuid:KF-LEGACY-1"), kaifa("E-A2-02", "10:01"),
              ticket("E-A2-03", "10:02", ticket_id="TC-LEGACY-3")]
    play(grid, events, order)
    dp_outage = scalar(grid, "SELECT id FROM oms_outage_events WHERE scope = 'distribution_point'")
    ticket_row = scalar(grid, "SELECT id FROM callcenter_tickets WHERE external_ticket_id = 'TC-LEGACY-3'")
    before = scalar(grid, "SELECT count(*) FROM oms_outage_events")
    correlate = "SELECT oms_correlate_events('outage', %s, %s, '2025-10-01T10:00:00Z', 31.9, 35.9, 30, 1000)"
    # The consumers' ids (LEGACY_SCHEMA.md): the Kaifa payload's event_id, the ticket's 'cc_<id>'; both
    # name events merged into the DP outage since, and the answer is where they are now.
    assert scalar(grid, correlate, ("kaifa", "urn:uuid:KF-LEGACY-1")) == dp_outage
    assert scalar(grid, correlate, ("call_center", f"cc_{ticket_row}")) == dp_outage
    assert scalar(grid, "SELECT count(*) FROM oms_outage_events") == before


@pytest.mark.parametrize("order", ORDERS)
def test_a_source_shared_by_outages_that_merge_is_kept_once(grid, order):
    # An ONU naming two meters by number (no ONU link in the registry) is one source event of both
    # meters' service outages; when DP-B3 rolls up, the DP outage keeps that source once.
    gasp = onu(9555, "10:01")
    gasp[1]["associatedMeters"] = ["E-B3-01", "E-B3-02"]
    play(grid, [kaifa("E-B3-01", "10:00"), kaifa("E-B3-02", "10:00"), gasp, kaifa("E-B3-03", "10:02")], order)
    assert scalar(grid, "SELECT count(*) FROM oms_rejected_events") == 0
    assert picture(grid) == [("DP-B3", "distribution_point", "confirmed", 3, 3, "1.00", "10:00", None,
                              meters("E-B3", [1, 2, 3]), None)]
    assert query(grid, """SELECT source_type, count(*) FROM oms_event_sources es JOIN oms_outage_events o
                          ON o.id = es.outage_event_id WHERE o.scope = 'distribution_point' GROUP BY 1 ORDER BY 1""") == [
        ("kaifa", 3), ("onu", 1)]


# One order only: the operator closes the outages between the signals, and the last gasp must come
# after that.
def test_an_outage_an_operator_closes_lets_its_meters_go(grid):
    # A call about E-B1-01 opens a service outage; the operator cancels it as a false alarm through
    # the operations API. E-B2-01's outage the operator restores by hand.
    play(grid, [ticket("E-B1-01", "10:00"), kaifa("E-B2-01", "10:00")])
    query(grid, """UPDATE oms_outage_events SET status = 'cancelled'
                   WHERE device_key = (SELECT 'service:meter:' || id FROM oms_meters WHERE meter_number = 'E-B1-01')""")
    query(grid, """UPDATE oms_outage_events SET status = 'restored'
                   WHERE device_key = (SELECT 'service:meter:' || id FROM oms_meters WHERE meter_number = 'E-B2-01')""")
    assert query(grid, """SELECT m.meter_number, om.on_at IS NOT NULL, c.restored_at IS NOT NULL
                          FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          JOIN oms_outage_customers c ON c.outage_id = om.outage_id AND c.customer_id = om.customer_id
                          ORDER BY 1""") == [("E-B1-01", True, True), ("E-B2-01", True, True)]
    assert scalar(grid, """SELECT count(*) FROM oms_outage_events
                           WHERE status = 'restored' AND actual_restoration_time IS NOT NULL""") == 1
    # A real last gasp later is a new outage, not a source of the closed one.
    play(grid, [kaifa("E-B1-01", "10:30")])
    assert [row[:5] + row[6:7] for row in picture(grid) if row[0] == "E-B1-01"] == [
        ("E-B1-01", "service", "cancelled", 1, 0, "10:00"), ("E-B1-01", "service", "confirmed", 1, 1, "10:30")]


@pytest.mark.parametrize("order", ORDERS)
def test_one_dp_out_twice_in_the_window_is_one_child_of_its_feeder(grid, order):
    # DP-B1 rolls up at 10:00 and is back at 10:01; three of its meters go off again at 10:03. Two
    # DP outages within five minutes, but one DP: no feeder roll-up (rollup_min_children is 2).
    first = meters("E-B1", [1, 2, 3])
    play(grid, [kaifa(m, "10:00") for m in first] + [kaifa(m, "10:01", restored=True) for m in first]
         + [kaifa(m, "10:03") for m in meters("E-B1", [4, 5, 6])], order)
    assert [row[:4] + row[6:8] for row in picture(grid)] == [
        ("DP-B1", "distribution_point", "restored", 3, "10:00", "10:01"),
        ("DP-B1", "distribution_point", "confirmed", 3, "10:03", None)]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (1, 0, 2)])
def test_a_meter_is_out_from_its_earliest_word_in_any_arrival_order(grid, order):
    # Word of E-B1-01 off at 10:00 and at 10:02, back at 10:30: one interruption from 10:00 to 10:30,
    # whichever arrives first (the customer minutes of the indices are read from these times).
    events = [kaifa("E-B1-01", "10:00"), kaifa("E-B1-01", "10:02"), kaifa("E-B1-01", "10:30", restored=True)]
    play(grid, [events[i] for i in order])
    assert query(grid, """SELECT to_char(om.off_at AT TIME ZONE 'UTC', 'HH24:MI'), to_char(om.on_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          WHERE m.meter_number = 'E-B1-01'""") == [("10:00", "10:30")]
    assert [row[:3] + row[6:8] for row in picture(grid)] == [("E-B1-01", "service", "restored", "10:00", "10:30")]


@pytest.mark.parametrize("order", ORDERS)
def test_an_old_open_outage_is_no_second_service_of_a_new_one(grid, order):
    # E-B1-01 has been out since 09:30. At 10:00 a building of three meters of DP-B1 goes: three
    # meters, but of one service within the window. The 09:30 outage is not evidence about it, so
    # nothing rolls up to the DP.
    query(grid, "INSERT INTO onus (id, name) VALUES (9100, 'Building 9100')")
    query(grid, "UPDATE oms_meters SET onu_id = 9100 WHERE meter_number IN ('E-B1-02', 'E-B1-03', 'E-B1-04')")
    play(grid, [kaifa("E-B1-01", "09:30"), onu(9100, "10:00")], order)
    assert [row[:2] + row[3:4] + row[6:7] for row in picture(grid)] == [
        ("E-B1-01", "service", 1, "09:30"), ("onu:9100", "service", 3, "10:00")]


@pytest.mark.parametrize("order", ORDERS)
def test_an_old_open_outage_is_not_merged_into_a_new_feeder_outage(grid, order):
    # E-B3-01 has been out since 08:00. At 10:00-10:05 DP-B1 and DP-B2 go, and F-B rolls up. The
    # 08:00 outage is no part of it: it stays on its own, and the feeder outage starts at 10:00 (not
    # at 08:00, which would add two hours to every customer's interruption).
    events = [kaifa(m, t) for m, t in zip(meters("E-B1", [1, 2, 3]) + meters("E-B2", [1, 2, 3]),
                                          ["10:00", "10:01", "10:02", "10:03", "10:04", "10:05"])]
    play(grid, [kaifa("E-B3-01", "08:00")] + events, order)
    assert [row[:2] + row[3:4] + row[6:7] for row in picture(grid)] == [
        ("E-B3-01", "service", 1, "08:00"), ("F-B", "feeder", 6, "10:00")]
    # As in the two-DP test: five written and merged, and the 08:00 outage not among them.
    assert merged_count(grid) == 5


@pytest.mark.parametrize("order", reversed_fails(TRIP_READS_THE_REGISTRY +
    "Reversed, the 10:00 trip comes first and finds E-A1-03 on and fresh: E-A1-03 is out 10:01-10:30, not "
    "10:00-10:30, and the indices count 89 customer minutes, not 90."))
def test_a_scada_trip_that_arrives_after_its_restoration_takes_in_what_the_restoration_restored(grid, order):
    # Three meters of DP-A1 go at 10:00-10:01 and roll up to the DP; the feeder's restoration at
    # 10:30 restores that outage; then the feeder's trip of 10:00 arrives. One interruption, told
    # twice: the late SCADA outage takes the DP outage in, and each customer counts once.
    play(grid, [kaifa("E-A1-01", "10:00"), kaifa("E-A1-02", "10:00"), kaifa("E-A1-03", "10:01"),
                scada("A", "10:30", restoration=True), scada("A", "10:00")], order)
    assert [row[:5] + row[6:9] for row in picture(grid)] == [
        ("F-A", "feeder", "restored", 3, 0, "10:00", "10:30", meters("E-A1", [1, 2, 3]))]
    if order == "as sent":
        # Reversed, the trip comes first and the meters join its outage: no DP outage is written.
        dp_outage = query(grid, "SELECT status, merged_into IS NOT NULL FROM oms_outage_events "
                                "WHERE scope = 'distribution_point'")
        assert dp_outage == [("merged", True)]
    # E-A1-03 was off from 10:01 in the DP outage and from 10:00 in the trip: one span, 10:00-10:30.
    assert query(grid, "SELECT to_char(off_at AT TIME ZONE 'UTC', 'HH24:MI'), to_char(on_at AT TIME ZONE 'UTC', 'HH24:MI') "
                       "FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id "
                       "WHERE m.meter_number = 'E-A1-03'") == [("10:00", "10:30")]
    # The reliability record counts three customers, 30 minutes each, once.
    assert query(grid, """SELECT customers_interrupted, round(customer_minutes::numeric)
                          FROM oms_reliability_indices('2025-10-01', '2025-10-02')""") == [(3, 90)]


@pytest.mark.parametrize("restoration_arrives", ["in time", "last"])
@pytest.mark.parametrize("order", reversed_fails(TRIP_READS_THE_REGISTRY +
    "Reversed, the 10:00 trip comes last and takes in E-A1-05 and E-A2-03, off since their 10:25 last gasps: "
    "the feeder outage holds 3 meters (E-A2-03 10:00-10:20, E-A1-05 from 10:00, not 10:01), and E-A2-03's "
    "10:25 outage is nested in it."))
def test_a_late_scada_restoration_ends_no_span_that_began_after_it(grid, order, restoration_arrives):
    # F-A trips at 10:00 (no meter of it reads as off yet); E-A1-05 is off from 10:01 to 10:10 and
    # E-A3-07 from 10:02 until the feeder is restored at 10:20 (its meter says 10:30); E-A4-02 is
    # off from 10:22 to 10:24; E-A1-05 and E-A2-03 go off at 10:25. Delivered in time, or with the
    # restoration last (the later signals then join the still open feeder outage first), the outcome
    # is the same: the feeder outage is over at 10:20 with the spans of before, and each later loss
    # is an outage of its own, E-A1-05's nested in the feeder's (it was one of its meters). A late
    # restoration never ends a span before it began, nor keeps one that began after it.
    events = [scada("A", "10:00"), kaifa("E-A1-05", "10:01"), kaifa("E-A3-07", "10:02"),
              kaifa("E-A1-05", "10:10", restored=True), scada("A", "10:20", restoration=True),
              kaifa("E-A4-02", "10:22"), kaifa("E-A4-02", "10:24", restored=True),
              kaifa("E-A1-05", "10:25"), kaifa("E-A2-03", "10:25"), kaifa("E-A3-07", "10:30", restored=True)]
    play(grid, events if restoration_arrives == "in time" else events[:4] + events[5:] + events[4:5], order)
    assert picture(grid) == [
        ("E-A1-05", "service", "confirmed", 1, 1, "0.80", "10:25", None, ["E-A1-05"], "10:00"),
        ("E-A2-03", "service", "confirmed", 1, 1, "0.80", "10:25", None, ["E-A2-03"], None),
        ("E-A4-02", "service", "restored", 1, 0, "0.80", "10:22", "10:24", ["E-A4-02"], None),
        ("F-A", "feeder", "restored", 2, 0, "1.00", "10:00", "10:20", ["E-A1-05", "E-A3-07"], None)]
    assert query(grid, """SELECT m.meter_number, to_char(om.off_at AT TIME ZONE 'UTC', 'HH24:MI'),
                                 to_char(om.on_at AT TIME ZONE 'UTC', 'HH24:MI'), o.scope
                          FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          JOIN oms_outage_events o ON o.id = om.outage_id ORDER BY 1, 2""") == [
        ("E-A1-05", "10:01", "10:10", "feeder"), ("E-A1-05", "10:25", None, "service"),
        ("E-A2-03", "10:25", None, "service"), ("E-A3-07", "10:02", "10:20", "feeder"),
        ("E-A4-02", "10:22", "10:24", "service")]
    assert query(grid, """SELECT c.customer_id, to_char(oc.restored_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_outage_customers oc JOIN oms_customers c ON c.id = oc.customer_id
                          JOIN oms_outage_events o ON o.id = oc.outage_id WHERE o.scope = 'feeder' ORDER BY 1""") == [
        ("CE-A1-05", "10:10"), ("CE-A3-07", "10:20")]
    assert query(grid, "SELECT meter_number, power_status FROM oms_meters "
                       "WHERE meter_number IN ('E-A1-05', 'E-A2-03', 'E-A3-07', 'E-A4-02') ORDER BY 1") == [
        ("E-A1-05", "off"), ("E-A2-03", "off"), ("E-A3-07", "on"), ("E-A4-02", "on")]


@pytest.mark.parametrize("restoration_arrives", ["in time", "last"])
@pytest.mark.parametrize("order", ORDERS)
def test_a_late_scada_restoration_replays_later_word_about_meters_already_out(grid, order, restoration_arrives):
    # F-A trips at 10:00 (no meter of it reads as off yet); E-A3-07 goes off at 10:02 and E-A4-02 at
    # 10:03, both into the feeder outage, which is restored at 10:20. E-A4-02 is off again from 10:22
    # to 10:24, and E-A3-07 from 10:25. With the restoration last, the later power-offs arrive while
    # both meters are still out in the feeder outage, so they join it as sources only (no span of
    # their own); the restoration must still leave each its own outage after 10:20, as in time.
    events = [scada("A", "10:00"), kaifa("E-A3-07", "10:02"), kaifa("E-A4-02", "10:03"),
              scada("A", "10:20", restoration=True),
              kaifa("E-A4-02", "10:22"), kaifa("E-A4-02", "10:24", restored=True), kaifa("E-A3-07", "10:25")]
    play(grid, events if restoration_arrives == "in time" else events[:3] + events[4:] + events[3:4], order)
    assert picture(grid) == [
        ("E-A3-07", "service", "confirmed", 1, 1, "0.80", "10:25", None, ["E-A3-07"], "10:00"),
        ("E-A4-02", "service", "restored", 1, 0, "0.80", "10:22", "10:24", ["E-A4-02"], "10:00"),
        ("F-A", "feeder", "restored", 2, 0, "1.00", "10:00", "10:20", ["E-A3-07", "E-A4-02"], None)]
    # Each later power-off is a source of the outage it belongs to, and of no other.
    assert query(grid, """SELECT to_char(es.event_timestamp AT TIME ZONE 'UTC', 'HH24:MI'), o.scope,
                                 to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_event_sources es JOIN oms_outage_events o ON o.id = es.outage_event_id
                          WHERE es.source_type = 'kaifa' AND es.correlation_weight IS NOT NULL
                            AND o.substation_id = (SELECT id FROM network_substations WHERE substation_id = 'SS-ENG')
                          ORDER BY 1, 2""") == [
        ("10:02", "feeder", "10:00"), ("10:03", "feeder", "10:00"),
        ("10:22", "service", "10:22"), ("10:25", "service", "10:25")]
    assert query(grid, "SELECT meter_number, power_status FROM oms_meters "
                       "WHERE meter_number IN ('E-A3-07', 'E-A4-02') ORDER BY 1") == [("E-A3-07", "off"), ("E-A4-02", "on")]


@pytest.mark.parametrize("restoration_arrives", ["in time", "last"])
@pytest.mark.parametrize("order", ORDERS)
def test_a_late_scada_restoration_weighs_its_outage_without_the_word_that_came_after(grid, order, restoration_arrives):
    # A customer of E-A2-03 calls at 10:05 (a service outage at 0.4); F-A's restoration at 10:20
    # restores it; the customer calls again at 10:25. With the restoration last, the second call first
    # joined the 10:05 outage (0.64); it is then no evidence of that outage, but of the next one.
    events = [ticket("E-A2-03", "10:05"), scada("A", "10:20", restoration=True), ticket("E-A2-03", "10:25")]
    play(grid, events if restoration_arrives == "in time" else [events[0], events[2], events[1]], order)
    assert picture(grid) == [
        ("E-A2-03", "service", "restored", 1, 0, "0.40", "10:05", "10:20", ["E-A2-03"], None),
        ("E-A2-03", "service", "detected", 1, 1, "0.40", "10:25", None, ["E-A2-03"], "10:05")]


@pytest.mark.parametrize("order", reversed_fails(TRIP_READS_THE_REGISTRY +
    "Reversed, the 10:00 trip comes last, after the 10:25 trip marked all forty meters off: the 10:00-10:20 "
    "outage holds all 40 meters, not E-A3-07 alone (out from 10:00, not 10:02)."))
def test_a_late_scada_restoration_leaves_a_newer_trip_its_own_outage(grid, order):
    # F-A trips at 10:00 (E-A3-07 goes off at 10:02), is restored at 10:20 and trips again at
    # 10:25; the restoration arrives last, when the 10:25 trip has joined the 10:00 outage. The
    # feeder is out now: the 10:00 outage is over at 10:20, and the 10:25 trip has an outage of its
    # own, open, with the meters it found affected (all forty: by 10:25 none had been heard from
    # within the fresh window) and itself as its source.
    play(grid, [scada("A", "10:00"), kaifa("E-A3-07", "10:02"), scada("A", "10:25"),
                scada("A", "10:20", restoration=True)], order)
    assert picture(grid) == [
        ("F-A", "feeder", "restored", 1, 0, "1.00", "10:00", "10:20", ["E-A3-07"], None),
        ("F-A", "feeder", "confirmed", 40, 40, "1.00", "10:25", None,
         sorted(f"E-A{d}-{n:02d}" for d in range(1, 5) for n in range(1, 11)), None)]
    assert query(grid, """SELECT to_char(om.off_at AT TIME ZONE 'UTC', 'HH24:MI'), to_char(om.on_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          WHERE m.meter_number = 'E-A3-07' ORDER BY 1""") == [("10:02", "10:20"), ("10:25", None)]
    # Each trip is a source of the outage it belongs to, and its alarm row says so.
    assert query(grid, """SELECT to_char(e.event_timestamp AT TIME ZONE 'UTC', 'HH24:MI'),
                                 to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI'),
                                 (SELECT to_char(so.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI')
                                  FROM oms_event_sources es JOIN oms_outage_events so ON so.id = es.outage_event_id
                                  WHERE es.source_type = 'scada' AND es.source_event_id = e.id::text)
                          FROM scada_events e JOIN oms_outage_events o ON o.id = e.outage_event_id
                          WHERE e.check_result ->> 'classification' = 'outage' ORDER BY 1""") == [
        ("10:00", "10:00", "10:00"), ("10:25", "10:25", "10:25")]
    assert query(grid, "SELECT power_status FROM oms_meters WHERE meter_number = 'E-A3-07'") == [("off",)]


@pytest.mark.parametrize("order", ORDERS)
def test_a_restoration_older_than_one_already_handled_still_ends_the_outage_at_its_time(grid, order):
    # F-A trips at 10:00 (E-A3-07 goes off at 10:02), is restored at 10:20, trips again at 10:25 and
    # is restored at 10:40. The 10:20 restoration arrives last, when the 10:40 one has restored the
    # one outage both trips made. The feeder was out twice: 10:00-10:20, and 10:25-10:40 with the
    # meters the second trip found (all forty, as in the newer-trip test above).
    play(grid, [scada("A", "10:00"), kaifa("E-A3-07", "10:02"), scada("A", "10:25"),
                scada("A", "10:40", restoration=True), scada("A", "10:20", restoration=True)], order)
    every_meter = sorted(f"E-A{d}-{n:02d}" for d in range(1, 5) for n in range(1, 11))
    assert picture(grid) == [
        ("F-A", "feeder", "restored", 1, 0, "1.00", "10:00", "10:20", ["E-A3-07"], None),
        ("F-A", "feeder", "restored", 40, 0, "1.00", "10:25", "10:40", every_meter, None)]
    assert query(grid, """SELECT to_char(om.off_at AT TIME ZONE 'UTC', 'HH24:MI'), to_char(om.on_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          WHERE m.meter_number = 'E-A3-07' ORDER BY 1""") == [("10:02", "10:20"), ("10:25", "10:40")]
    # Each restoration is a source of the outage it ended, and each trip of the one it began.
    assert query(grid, """SELECT to_char(e.event_timestamp AT TIME ZONE 'UTC', 'HH24:MI'),
                                 to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM scada_events e
                          JOIN oms_event_sources es ON es.source_type = 'scada' AND es.source_event_id = e.id::text
                          JOIN oms_outage_events o ON o.id = es.outage_event_id
                          WHERE e.feeder_id = 'F-A'
                          ORDER BY 1, 2""") == [("10:00", "10:00"), ("10:20", "10:00"), ("10:25", "10:25"), ("10:40", "10:25")]
    assert query(grid, "SELECT DISTINCT power_status FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id "
                       "WHERE f.feeder_id = 'F-A'") == [("on",)]


@pytest.mark.parametrize("order", reversed_fails(TRIP_READS_THE_REGISTRY +
    "Reversed, the 10:00 trip comes last, after the 10:25 trip marked all forty meters off: the 10:00-10:20 "
    "outage holds all 40 meters, not E-A3-07 alone."))
def test_later_word_about_a_meter_a_newer_trip_took_out_goes_with_that_trip(grid, order):
    # As in the newer-trip test above, with E-A1-01's last gasp at 10:30 arriving before the 10:20
    # restoration: E-A1-01 was out only through the 10:25 trip, so its 10:30 word joined the 10:00
    # outage as a source. It is word about the 10:25 outage, and a source of that one.
    play(grid, [scada("A", "10:00"), kaifa("E-A3-07", "10:02"), scada("A", "10:25"),
                kaifa("E-A1-01", "10:30", event_id="KF-LATER-WORD"), scada("A", "10:20", restoration=True)], order)
    assert query(grid, """SELECT to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI'), o.status
                          FROM oms_event_sources es JOIN oms_outage_events o ON o.id = es.outage_event_id
                          WHERE es.source_event_id = 'KF-LATER-WORD'""") == [("10:25", "confirmed")]
    assert [row[:8] for row in picture(grid)] == [
        ("F-A", "feeder", "restored", 1, 0, "1.00", "10:00", "10:20"),
        ("F-A", "feeder", "confirmed", 40, 40, "1.00", "10:25", None)]


@pytest.mark.parametrize("order", ORDERS)
def test_an_outage_alarm_after_its_restoration_joins_the_outage_open_at_its_time(grid, order):
    # F-A trips at 10:25 and is restored at 10:40; its trip of 10:30 arrives last. In time it joined
    # the 10:25 outage as one more source, its meters held already: one outage, one span a meter.
    play(grid, [scada("A", "10:25"), scada("A", "10:40", restoration=True), scada("A", "10:30")], order)
    assert [row[:8] for row in picture(grid)] == [("F-A", "feeder", "restored", 40, 0, "1.00", "10:25", "10:40")]
    assert query(grid, """SELECT to_char(e.event_timestamp AT TIME ZONE 'UTC', 'HH24:MI'),
                                 to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM scada_events e JOIN oms_outage_events o ON o.id = e.outage_event_id
                          WHERE e.feeder_id = 'F-A'
                          ORDER BY 1""") == [("10:25", "10:25"), ("10:30", "10:25"), ("10:40", "10:25")]


@pytest.mark.parametrize("order", ORDERS)
def test_an_outage_alarm_after_two_handled_restorations_is_over_at_the_first(grid, order):
    # F-A's restorations of 10:40 and 10:50 are handled before its 10:00 trip arrives: the trip's
    # outage was over at 10:40, the first restoration after it.
    play(grid, [scada("A", "10:40", restoration=True), scada("A", "10:50", restoration=True), scada("A", "10:00")], order)
    assert [row[:8] for row in picture(grid)] == [("F-A", "feeder", "restored", 0, 0, "1.00", "10:00", "10:40")]


@pytest.mark.parametrize("order", ORDERS)
def test_an_outage_alarm_after_a_take_back_joins_only_what_its_restoration_still_ends(grid, order):
    # The take-back test's alarms, then a trip at 10:30 that arrives after them all: in time it
    # would have joined the 10:25 outage, which the 10:40 restoration ended. It must not pull the
    # 10:00-10:20 outage, which the 10:40 restoration no longer ends, into it.
    play(grid, [scada("A", "10:00"), kaifa("E-A3-07", "10:02"), scada("A", "10:25"),
                scada("A", "10:40", restoration=True), scada("A", "10:20", restoration=True), scada("A", "10:30")], order)
    assert [row[:8] for row in picture(grid)] == [
        ("F-A", "feeder", "restored", 1, 0, "1.00", "10:00", "10:20"),
        ("F-A", "feeder", "restored", 40, 0, "1.00", "10:25", "10:40")]


@pytest.mark.parametrize("order", reversed_fails(TRIP_READS_THE_REGISTRY +
    "Reversed, the 10:25 and 10:00 trips come after E-A4-02's 10:35 last gasp and take it in: E-A4-02 is out "
    "10:00-10:15 and 10:25-10:40, not 10:35-10:40."))
def test_a_restoration_applied_again_turns_on_the_meters_of_outages_it_now_ends(grid, order):
    # F-A trips at 10:00 and 10:25 (E-A4-02, back at 10:15, is fresh and on then: not affected) and
    # is restored at 10:40; then E-A4-02's last gasp of 10:35 arrives (an outage of its own, open,
    # its meter off), then the 10:20 restoration. Applied again, the 10:40 restoration ends what is
    # open on F-A and began before it, and turns E-A4-02 back on, as in time it would have.
    play(grid, [scada("A", "10:00"), kaifa("E-A3-07", "10:02"), kaifa("E-A4-02", "10:15", restored=True),
                scada("A", "10:25"), scada("A", "10:40", restoration=True), kaifa("E-A4-02", "10:35"),
                scada("A", "10:20", restoration=True)], order)
    assert query(grid, """SELECT o.status, to_char(om.off_at AT TIME ZONE 'UTC', 'HH24:MI'),
                                 to_char(om.on_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_outage_events o JOIN oms_outage_meters om ON om.outage_id = o.id
                          JOIN oms_meters m ON m.id = om.meter_id
                          WHERE m.meter_number = 'E-A4-02' ORDER BY om.off_at""") == [("restored", "10:35", "10:40")]
    assert query(grid, "SELECT power_status FROM oms_meters WHERE meter_number = 'E-A4-02'") == [("on",)]
    assert query(grid, """SELECT count(*) FROM oms_outage_events o JOIN network_feeders f ON f.id = o.feeder_id
                          WHERE f.feeder_id = 'F-A' AND o.status NOT IN ('restored', 'merged')""") == [(0,)]


@pytest.mark.parametrize("trip", [True, False], ids=["after a trip", "no trip"])
@pytest.mark.parametrize("power_off_arrives", ["in time", "last"])
@pytest.mark.parametrize("order", ORDERS)
def test_a_power_off_older_than_a_handled_restoration_of_its_feeder_is_over_at_that_restoration(
        grid, order, trip, power_off_arrives):
    # E-A2-05 goes off at 10:01 and F-A is restored at 10:40 (after a trip at 10:00 that found no
    # meter off, or none). Delivered last, as a delayed head-end message is, the last gasp finds the
    # restoration handled: in time it joined the feeder outage (or opened its own) and came back at
    # 10:40 with the feeder; so it does now, and the registry has the meter on.
    events = ([scada("A", "10:00")] if trip else []) + [kaifa("E-A2-05", "10:01"),
                                                       scada("A", "10:40", restoration=True)]
    if power_off_arrives == "last":
        events = [e for e in events if e[1].get("payload") is None] + [e for e in events if e[1].get("payload")]
    play(grid, events, order)
    assert picture(grid) == ([("F-A", "feeder", "restored", 1, 0, "1.00", "10:00", "10:40", ["E-A2-05"], None)] if trip
                             else [("E-A2-05", "service", "restored", 1, 0, "0.80", "10:01", "10:40", ["E-A2-05"], None)])
    assert query(grid, "SELECT power_status FROM oms_meters WHERE meter_number = 'E-A2-05'") == [("on",)]


@pytest.mark.parametrize("power_off_arrives", ["in time", "last"])
@pytest.mark.parametrize("order", ORDERS)
def test_a_power_off_long_before_a_trip_is_an_outage_of_its_own_that_the_restoration_ends(grid, order, power_off_arrives):
    # E-A2-05 goes off at 09:40, more than the join window (30 min) before F-A's trip of 10:12, and
    # F-A is restored at 10:40. The trip takes in the predicted outages under its feeder that began
    # within the join window before it (SPEC §5.2-5.3: the window bounds what joins an outage); a
    # loss 32 minutes older is another outage, as an old open outage is no part of a feeder
    # roll-up. The restoration ends every open outage of its feeder, this one too. Until 0.3.0 the
    # trip took it in, and a late trip did not: the outcome hung on arrival order (SPEC §5.3).
    events = [kaifa("E-A2-05", "09:40"), scada("A", "10:12"), scada("A", "10:40", restoration=True)]
    play(grid, events if power_off_arrives == "in time" else events[1:] + events[:1], order)
    assert [row[:10] for row in picture(grid)] == [
        ("E-A2-05", "service", "restored", 1, 0, "0.80", "09:40", "10:40", ["E-A2-05"], None),
        ("F-A", "feeder", "restored", 0, 0, "1.00", "10:12", "10:40", [], None)]
    assert query(grid, "SELECT power_status FROM oms_meters WHERE meter_number = 'E-A2-05'") == [("on",)]


@pytest.mark.parametrize("order", reversed_fails(TRIP_READS_THE_REGISTRY +
    "Reversed, the 10:00 trip comes last and takes in E-A3-07, off since its 10:06 last gasp: E-A3-07 is out "
    "10:00-10:40, not 10:06-10:40."))
def test_an_earlier_word_about_a_span_a_late_restoration_clipped_moves_its_start(grid, order):
    # F-A trips at 10:00; E-A2-05 goes off at 10:05 and E-A3-07 at 10:06; E-A2-05 says it is back at
    # 10:50; the 10:40 restoration arrives late and ends both spans at 10:40; then E-A2-05's word of
    # 10:03 arrives. It is the same span, from 10:03: no second one beside it.
    play(grid, [scada("A", "10:00"), kaifa("E-A2-05", "10:05"), kaifa("E-A3-07", "10:06"),
                kaifa("E-A2-05", "10:50", restored=True), scada("A", "10:40", restoration=True),
                kaifa("E-A2-05", "10:03")], order)
    assert query(grid, """SELECT m.meter_number, to_char(om.off_at AT TIME ZONE 'UTC', 'HH24:MI'),
                                 to_char(om.on_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          WHERE m.meter_number LIKE 'E-%' ORDER BY 1, 2""") == [
        ("E-A2-05", "10:03", "10:40"), ("E-A3-07", "10:06", "10:40")]


@pytest.mark.parametrize("power_off_arrives", ["in time", "last"])
@pytest.mark.parametrize("order", reversed_fails(TRIP_READS_THE_REGISTRY +
    "Reversed, the 10:00 trip comes after the 10:01 last gasp (the flaps are not known yet) and takes the meter "
    "in: E-A2-05 is in the feeder outage 10:00-10:40 and ends on, not off and in no outage."))
def test_a_flapping_meter_s_late_power_off_is_not_turned_on_by_the_restoration(grid, order, power_off_arrives):
    # E-A2-05 flaps (four changes from 09:50, threshold 2); F-A trips at 10:00; its last gasp of 10:01
    # joins nothing; the 10:40 restoration does not touch it. Delivered last, the last gasp finds the
    # restoration handled, and still leaves the meter as in time: off, in no outage.
    flaps = [kaifa("E-A2-05", "09:50"), kaifa("E-A2-05", "09:52", restored=True),
             kaifa("E-A2-05", "09:54"), kaifa("E-A2-05", "09:56", restored=True)]
    late = [scada("A", "10:00"), kaifa("E-A2-05", "10:01"), scada("A", "10:40", restoration=True)]
    if power_off_arrives == "last":
        late = [late[0], late[2], late[1]]
    play(grid, flaps + late, order, settings={"oms_correlation.flap_threshold": "2"})
    assert query(grid, "SELECT power_status FROM oms_meters WHERE meter_number = 'E-A2-05'") == [("off",)]
    assert query(grid, """SELECT count(*) FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          WHERE m.meter_number = 'E-A2-05' AND om.off_at >= '2025-10-01 10:00+00'""") == [(0,)]


@pytest.mark.parametrize("order", ["in time", "restoration first"])
def test_a_late_trip_takes_in_the_outage_a_late_power_off_was_given(grid, order):
    # F-A trips at 10:00 (finding no meter off), E-A2-05 goes off at 10:01, F-A is restored at
    # 10:40. Delivered restoration first, then the last gasp (an outage of its own, over at 10:40),
    # then the trip: the trip's outage takes that one in, as in time the last gasp joined the trip's.
    events = [scada("A", "10:00"), kaifa("E-A2-05", "10:01"), scada("A", "10:40", restoration=True)]
    play(grid, events if order == "in time" else [events[2], events[1], events[0]])
    assert picture(grid) == [("F-A", "feeder", "restored", 1, 0, "1.00", "10:00", "10:40", ["E-A2-05"], None)]


@pytest.mark.parametrize("order", reversed_fails(TRIP_READS_THE_REGISTRY +
    "Reversed, the 09:50 and 10:10 trips come first, when the building's meters are on and fresh, and the 10:00 "
    "trip last: each meter's first span is 10:00-10:20, not 09:50-10:20."))
def test_late_scada_trips_extend_a_meter_span_instead_of_adding_overlapping_ones(grid, order):
    # F-A trips at 10:00; the building of ONU 9001 is back at 10:20 and off again at 10:30; trips of
    # 09:50 and 10:10 arrive late, when the registry has the building's meters off (10:30), so each
    # trip counts them among its affected meters. E-A1-01 and E-A1-02 were out from 09:50 to 10:20
    # and from 10:30: two spans each, not one per trip that told of the first.
    play(grid, [scada("A", "10:00"), onu(9001, "10:30"), onu(9001, "10:20", restored=True),
                scada("A", "09:50"), scada("A", "10:10")], order)
    spans = query(grid, """SELECT m.meter_number, to_char(om.off_at AT TIME ZONE 'UTC', 'HH24:MI'),
                                  to_char(om.on_at AT TIME ZONE 'UTC', 'HH24:MI')
                           FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                           WHERE m.meter_number IN ('E-A1-01', 'E-A1-02') ORDER BY 1, 2""")
    assert spans == [("E-A1-01", "09:50", "10:20"), ("E-A1-01", "10:30", None),
                     ("E-A1-02", "09:50", "10:20"), ("E-A1-02", "10:30", None)]
