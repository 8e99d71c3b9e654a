"""SPEC §5 rules that no other test held the extension to, on the engine grid (engine_grid.py).

Every expected value is worked out by hand from the SPEC's rules and the grid (SS-ENG, feeders F-A
and F-B, DPs DP-A1..DP-A4 / DP-B1..DP-B4 of ten meters, each meter its own customer, every meter on
and heard from at 09:59; ONU 9001 serves E-A1-01 and E-A1-02), with the arithmetic in a comment. Each
test names, in a `Catches:` line, the broken implementation it fails on. Where the SPEC and the
extension disagreed (the DP roll-up leaving out an open outage begun within the join window, and
oms_correlation_summary listing merged outages), the tests failed until the extension was fixed.
"""

import json
from decimal import Decimal

import psycopg2
import pytest

from conftest import CORRELATING, call, dsn, heard, listen, query, scalar
from engine_grid import at, build_grid, kaifa, onu, picture, play, scada, ticket

ORDERS = ["as sent", "reversed"]


@pytest.fixture
def grid(pool):
    build_grid(pool)
    return pool


def meters(prefix, numbers):
    return [f"{prefix}-{n:02d}" for n in numbers]


def device_ids(pool):
    """The uuids of the grid's devices by code."""
    rows = query(pool, """SELECT substation_id, id FROM network_substations WHERE substation_id = 'SS-ENG'
                          UNION ALL SELECT feeder_id, id FROM network_feeders WHERE feeder_id LIKE 'F-%'
                          UNION ALL SELECT dp_id, id FROM network_distribution_points WHERE dp_id LIKE 'DP-%'""")
    return {code: str(uid) for code, uid in rows}


def set_source_weights(pool, kaifa_weight, call_weight):
    # Every rule's weight: oms_source_weight(source) is the largest an active rule listing it gives.
    query(pool, "UPDATE oms_correlation_rules SET weight_kaifa = %s, weight_call_center = %s",
          (kaifa_weight, call_weight))
    assert query(pool, "SELECT oms_source_weight('kaifa')::text, oms_source_weight('call_center')::text") == [
        (kaifa_weight, call_weight)]


# --- 1. source weights come from oms_correlation_rules (SPEC §5.2) ---------------------------------

def test_a_single_kaifa_outage_is_weighed_by_the_rules_table(grid):
    # Catches: a weight hard-coded (Kaifa 0.8) instead of read from oms_correlation_rules; with 0.8
    # the outage would read 0.80 and be confirmed (0.8 >= confirm_confidence 0.8).
    set_source_weights(grid, "0.50", "0.25")
    play(grid, [kaifa("E-A3-01", "10:00", event_id="KF-W-1")])
    # One source of weight 0.50: 1 - (1 - 0.50) = 0.50 < 0.8, so detected, not confirmed.
    assert picture(grid) == [("E-A3-01", "service", "detected", 1, 1, "0.50", "10:00", None, ["E-A3-01"], None)]
    assert query(grid, "SELECT source_type, source_event_id, correlation_weight::text FROM oms_event_sources") == [
        ("kaifa", "KF-W-1", "0.50")]


@pytest.mark.parametrize("order", ORDERS)
def test_a_dp_roll_up_is_weighed_by_the_rules_table(grid, order):
    # Catches: weights hard-coded or read once at load; a merge that keeps the merged outages'
    # confidences (or their max) instead of the noisy-OR over all the survivor's sources.
    set_source_weights(grid, "0.50", "0.25")
    # Three distinct meters of DP-A2 within five minutes roll up (rollup_min_meters 3).
    # Noisy-OR: 1 - (1-0.50)(1-0.50)(1-0.25) = 1 - 0.5 * 0.5 * 0.75 = 1 - 0.1875 = 0.8125 -> 0.81,
    # and 0.8125 >= confirm_confidence 0.8: confirmed. (Kaifa at 0.8 and a call at 0.4 would be 0.98.)
    play(grid, [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:01"), ticket("E-A2-03", "10:02")], order)
    assert picture(grid) == [("DP-A2", "distribution_point", "confirmed", 3, 3, "0.81", "10:00", None,
                              meters("E-A2", [1, 2, 3]), None)]
    assert query(grid, """SELECT es.source_type, es.correlation_weight::text FROM oms_event_sources es
                          JOIN oms_outage_events o ON o.id = es.outage_event_id
                          WHERE o.scope = 'distribution_point' ORDER BY 1, 2""") == [
        ("call_center", "0.25"), ("kaifa", "0.50"), ("kaifa", "0.50")]


def test_confidence_is_computed_over_the_sources_never_from_a_rounded_stored_value(grid):
    # Catches: confidence updated incrementally from the stored numeric(5,2) value. Four calls about
    # E-B1-01 at weight 0.25 (four tickets, four distinct source events, one service outage):
    #   exact: 1 - 0.75^4 = 1 - 0.31640625 = 0.68359375 -> 0.68;
    #   from rounded stored values: 0.25, 0.4375 -> 0.44, 1 - 0.56 * 0.75 = 0.58,
    #   1 - 0.42 * 0.75 = 0.685 -> 0.69.
    set_source_weights(grid, "0.50", "0.25")
    play(grid, [ticket("E-B1-01", t) for t in ["10:00", "10:01", "10:02", "10:03"]])
    assert picture(grid) == [("E-B1-01", "service", "detected", 1, 1, "0.68", "10:00", None, ["E-B1-01"], None)]
    assert scalar(grid, "SELECT count(*) FROM oms_event_sources") == 4


# --- 2. each meter's first source (SPEC §5.1) ------------------------------------------------------

@pytest.mark.parametrize("order", ORDERS)
def test_each_meter_keeps_its_first_source(grid, order):
    # Catches: first_source overwritten by the later signal, or taken from arrival order instead of
    # event time (reversed, the later signal of each meter arrives first).
    # E-A3-01: a call at 10:00, then Kaifa at 10:01. E-B3-01: Kaifa at 10:00, then a call at 10:01.
    # One meter on each feeder, one signal-time each: nothing rolls up.
    play(grid, [ticket("E-A3-01", "10:00", ticket_id="TC-FIRST-A"), kaifa("E-A3-01", "10:01", event_id="KF-SECOND-A"),
                kaifa("E-B3-01", "10:00", event_id="KF-FIRST-B"), ticket("E-B3-01", "10:01", ticket_id="TC-SECOND-B")],
         order)
    assert query(grid, """SELECT m.meter_number, om.first_source, om.first_source_event_id,
                                 to_char(om.off_at AT TIME ZONE 'UTC', 'HH24:MI')
                          FROM oms_outage_meters om JOIN oms_meters m ON m.id = om.meter_id
                          WHERE m.meter_number LIKE 'E-%' ORDER BY 1""") == [
        ("E-A3-01", "call_center", "TC-FIRST-A", "10:00"), ("E-B3-01", "kaifa", "KF-FIRST-B", "10:00")]
    # The ids are the ones the status events recorded for those signals (the ticket's ticketId, the
    # Kaifa payload's event_id).
    assert query(grid, """SELECT source_type, source_event_id FROM oms_meter_status_events
                          WHERE to_char(event_timestamp AT TIME ZONE 'UTC', 'HH24:MI') = '10:00' ORDER BY 1""") == [
        ("call_center", "TC-FIRST-A"), ("kaifa", "KF-FIRST-B")]
    # Both outages: a call (0.4) and Kaifa (0.8): 1 - 0.6 * 0.2 = 0.88.
    assert [row[:6] for row in picture(grid)] == [("E-A3-01", "service", "confirmed", 1, 1, "0.88"),
                                                  ("E-B3-01", "service", "confirmed", 1, 1, "0.88")]


# --- 3. a service outage names its meters' DP (SPEC §5.1) ----------------------------------------

def test_a_service_outage_names_its_dp_feeder_and_substation(grid):
    # Catches: a service outage written with dp_id (or feeder_id / substation_id) NULL, or with
    # another device's ids.
    play(grid, [kaifa("E-A1-05", "10:00")])
    ids = device_ids(grid)
    assert query(grid, "SELECT scope, dp_id::text, feeder_id::text, substation_id::text FROM oms_outage_events") == [
        ("service", ids["DP-A1"], ids["F-A"], ids["SS-ENG"])]


# --- 4. a substation outage covers the meters of its feeders (SPEC §5.2) --------------------------

def substation_alarm(hhmm):
    """An outage alarm for SS-ENG with no feederId: the substation is its scope (SPEC §4.1 step 2)."""
    return CORRELATING["scada"], {"eventType": "breaker_trip", "substationId": "SS-ENG", "alarmType": "fault",
                                  "timestamp": at(hhmm)}


def test_a_substation_outage_takes_in_later_power_offs_of_its_feeders_meters(grid):
    # Catches: a substation outage that covers no meter on a feeder (e.g. looked for only among the
    # substation's meters on no feeder, or only in the meter's own feeder area), so the later
    # power-offs open service outages beside it.
    result = call(grid, *substation_alarm("10:04"))
    # 80 active meters under SS-ENG (2 feeders x 4 DPs x 10), all on, online and heard at 09:59, within
    # comm_fresh_window (15 min) of 10:04: 80 online, none affected; the alarm still opens the outage.
    assert (result["meters_checked"], result["total_meters"], result["offline_meters"], result["online_meters"],
            result["unknown_meters"]) == (True, 80, 0, 80, 0)
    assert result["outage_event_id"] is not None
    # A meter of F-A at 10:06 and one of F-B at 10:07: each joins the substation outage.
    play(grid, [kaifa("E-A2-05", "10:06", event_id="KF-SUB-A"), kaifa("E-B2-07", "10:07", event_id="KF-SUB-B")])
    # Confidence: SCADA's 1.0 alone makes 1 - 0 = 1.00. Two customers.
    assert picture(grid) == [("SS-ENG", "substation", "confirmed", 2, 2, "1.00", "10:04", None,
                              ["E-A2-05", "E-B2-07"], None)]
    outage = result["outage_event_id"]
    assert scalar(grid, "SELECT id::text FROM oms_outage_events WHERE scope = 'substation'") == outage
    # No service outage was ever written, not even one merged into it.
    assert scalar(grid, "SELECT count(*) FROM oms_outage_events WHERE scope <> 'substation'") == 0
    assert query(grid, "SELECT source_type, source_event_id FROM oms_event_sources WHERE source_type = 'kaifa' "
                       "AND outage_event_id = %s ORDER BY 2", (outage,)) == [
        ("kaifa", "KF-SUB-A"), ("kaifa", "KF-SUB-B")]
    # Its sources: the alarm and the two last gasps.
    assert scalar(grid, "SELECT count(*) FROM oms_event_sources WHERE outage_event_id = %s", (outage,)) == 3


# --- 5. the join window's positive case (SPEC §5.2) ----------------------------------------------

def test_a_late_power_off_within_the_join_window_joins_a_scada_outage_and_moves_its_start(grid):
    # Catches: a join window applied the wrong way (or as zero), which would leave the late signal
    # an outage of its own; an outage start not moved to its earliest meter's off time.
    # Heard at 10:29, every F-A meter is fresh for a trip at 10:30: the trip affects none.
    query(grid, "UPDATE oms_meters SET last_communication = '2025-10-01 10:29+00' WHERE meter_number LIKE 'E-%'")
    trip = call(grid, *scada("A", "10:30"))
    assert trip["affected_meters"] == 0
    # E-A3-01's last gasp, dated 10:10, arrives after it: 10:10 >= 10:30 - 30 min = 10:00, so it joins,
    # and the outage now starts at 10:10, its earliest meter's off time.
    play(grid, [kaifa("E-A3-01", "10:10", event_id="KF-LATE-20")])
    assert picture(grid) == [("F-A", "feeder", "confirmed", 1, 1, "1.00", "10:10", None, ["E-A3-01"], None)]
    assert query(grid, """SELECT o.id::text FROM oms_event_sources es
                          JOIN oms_outage_events o ON o.id = es.outage_event_id
                          WHERE es.source_event_id = 'KF-LATE-20' AND o.status <> 'merged'""") == [
        (trip["outage_event_id"],)]


@pytest.mark.parametrize("order", ["late", "in time"])
def test_a_late_power_off_within_the_join_window_joins_a_dp_outage_and_moves_its_start(grid, order):
    # Catches: the join window honoured for SCADA outages only; a DP roll-up that leaves out an
    # open outage under the DP.
    # DP-A2 rolls up at 10:30-10:32 (three meters within 5 min): a DP outage from 10:30. E-A2-05's
    # last gasp is dated 10:10: 10:10 >= 10:30 - 30 min = 10:00, so arriving late it joins (SPEC
    # §5.2); in time it opened a service outage at 10:10 that was open under DP-A2 when the DP rolled
    # up at 10:32, so it merged in (SPEC §5.3). Either way: one DP outage of four meters from 10:10.
    # Confidence 1 - 0.2^4 = 0.9984 -> 1.00.
    rollup = [kaifa("E-A2-01", "10:30"), kaifa("E-A2-02", "10:31"), kaifa("E-A2-03", "10:32")]
    late = kaifa("E-A2-05", "10:10")
    play(grid, rollup + [late] if order == "late" else [late] + rollup)
    assert picture(grid) == [("DP-A2", "distribution_point", "confirmed", 4, 4, "1.00", "10:10", None,
                              meters("E-A2", [1, 2, 3, 5]), None)]


# --- 6. customers move with a merge; views count the survivor once (SPEC §5.3) -------------------

def three_service_outages_roll_up(pool):
    """E-A2-01 (10:00) and E-A2-02 (10:01) open two service outages; E-A2-03 (10:02) rolls DP-A2 up.
    Returns the DP outage's id and the two merged outages' ids."""
    play(pool, [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:01")])
    services = [str(r[0]) for r in query(pool, "SELECT id FROM oms_outage_events WHERE scope = 'service' "
                                                 "ORDER BY first_detected_at")]
    assert len(services) == 2
    # Before the roll-up, each service outage holds its own customer.
    assert query(pool, """SELECT c.customer_id FROM oms_outage_customers oc
                          JOIN oms_customers c ON c.id = oc.customer_id
                          WHERE oc.outage_id = ANY (%s::uuid[]) ORDER BY 1""", (services,)) == [
        ("CE-A2-01",), ("CE-A2-02",)]
    play(pool, [kaifa("E-A2-03", "10:02")])
    dp = str(scalar(pool, "SELECT id FROM oms_outage_events WHERE scope = 'distribution_point'"))
    assert query(pool, "SELECT id::text, status, merged_into::text FROM oms_outage_events WHERE scope = 'service' "
                       "ORDER BY first_detected_at") == [(services[0], "merged", dp), (services[1], "merged", dp)]
    return dp, services


def test_customers_move_with_a_merge_and_views_count_the_survivor_once(grid):
    # Catches: customers copied (not moved) into the survivor, or left behind; a view or index that
    # counts merged outages (as open outages, interruptions, or sources' outages).
    contributed = "SELECT outages_contributed FROM oms_source_summary WHERE source_type = 'kaifa'"
    before = query(grid, contributed)[0][0]  # an adopted or updated base has Kaifa outages of its own
    dp, services = three_service_outages_roll_up(grid)
    assert query(grid, "SELECT count(*) FROM oms_outage_customers WHERE outage_id = ANY (%s::uuid[])",
                 (services,)) == [(0,)]
    assert query(grid, """SELECT c.customer_id FROM oms_outage_customers oc
                          JOIN oms_customers c ON c.id = oc.customer_id
                          WHERE oc.outage_id = %s ORDER BY 1""", (dp,)) == [("CE-A2-01",), ("CE-A2-02",), ("CE-A2-03",)]
    # oms_active_outages: the DP outage once, 3 customers, its 3 sources.
    assert query(grid, """SELECT id::text, scope, affected_customers_count, source_count FROM oms_active_outages
                          WHERE substation_code = 'SS-ENG'""") == [(dp, "distribution_point", 3, 3)]
    # Open outages per device: 1 on SS-ENG, 1 on F-A, 0 on F-B (with 3 of F-A's meters off).
    assert query(grid, "SELECT open_outages, offline_meters FROM network_substations_with_meters "
                       "WHERE substation_id = 'SS-ENG'") == [(1, 3)]
    assert query(grid, "SELECT feeder_id, open_outages, offline_meters FROM network_feeders_with_meters "
                       "WHERE feeder_id LIKE 'F-%' ORDER BY 1") == [("F-A", 1, 3), ("F-B", 0, 0)]
    # Interruptions: the DP outage alone.
    assert query(grid, """SELECT i.id::text, i.affected_customers_count FROM oms_outage_interruptions i
                          JOIN network_substations s ON s.id = i.substation_id WHERE s.substation_id = 'SS-ENG'""") == [
        (dp, 3)]
    # Outages a source contributed to: Kaifa to one (its 3 source rows all sit on the DP outage).
    assert query(grid, contributed) == [(before + 1,)]
    # Indices over 10:00-11:00 on F-A: 3 customers interrupted once (the outage is still open, so
    # each counts to 11:00): 60 + 59 + 58 = 177 minutes; SAIFI 3/40 = 0.075, SAIDI 177/40 = 4.425.
    assert query(grid, """SELECT device, customers_served, customers_interrupted, customer_minutes, saifi, saidi
                          FROM oms_reliability_indices('2025-10-01 10:00+00', '2025-10-01 11:00+00', 'feeder')
                          WHERE device = 'F-A'""") == [
        ("F-A", 40, 3, Decimal("177.00"), Decimal("0.075000"), Decimal("4.425000"))]


@pytest.mark.parametrize("order", ORDERS)
def test_a_customer_counts_once_and_a_meter_with_no_customer_counts_as_one(grid, order):
    # Catches: customers counted per meter, meters with no customer counted as none (or all as one
    # shared "no customer"), and a customer counted back on while another of their meters is out.
    # The engine grid gives each meter its own customer, so the other tests never meet either case.
    # DP-A2: E-A2-02 shares E-A2-01's customer; E-A2-03 and E-A2-04 have none.
    query(grid, """UPDATE oms_meters SET customer_id = (SELECT customer_id FROM oms_meters WHERE meter_number = 'E-A2-01')
                   WHERE meter_number = 'E-A2-02'""")
    query(grid, "UPDATE oms_meters SET customer_id = NULL WHERE meter_number IN ('E-A2-03', 'E-A2-04')")
    # Four Kaifa power-offs within 3 min: the DP rolls up (three of ten). Customers: CE-A2-01 once,
    # plus each customer-less meter as one: 3. Confidence 1 - 0.2^4 = 0.9984 -> 1.00.
    play(grid, [kaifa(f"E-A2-0{n}", f"10:0{n - 1}") for n in (1, 2, 3, 4)], order)
    assert [row[:7] for row in picture(grid)] == [("DP-A2", "distribution_point", "confirmed", 3, 3, "1.00", "10:00")]
    # E-A2-03 back: 2 still out. E-A2-01 back: CE-A2-01 is still out through E-A2-02, so 2 still.
    play(grid, [kaifa("E-A2-03", "10:30", restored=True)])
    assert [row[3:5] for row in picture(grid)] == [(3, 2)]
    play(grid, [kaifa("E-A2-01", "10:31", restored=True)])
    assert [row[3:5] for row in picture(grid)] == [(3, 2)]
    play(grid, [kaifa("E-A2-02", "10:32", restored=True)])
    assert [row[3:5] for row in picture(grid)] == [(3, 1)]


def test_the_correlation_summary_counts_a_merged_outage_not_at_all(grid):
    # Catches: a per-outage summary with no filter on merged outages: a dashboard counting its rows
    # counts one interruption three times.
    dp, services = three_service_outages_roll_up(grid)
    assert query(grid, """SELECT cs.outage_event_id::text, cs.total_sources, cs.kaifa_sources
                          FROM oms_correlation_summary cs JOIN oms_outage_events o ON o.id = cs.outage_event_id
                          JOIN network_substations s ON s.id = o.substation_id
                          WHERE s.substation_id = 'SS-ENG'""") == [(dp, 3, 3)]


# --- 7. "joined" and "partially restored" are announced (SPEC §5.8) ------------------------------

def test_a_join_and_a_partial_restoration_are_announced(grid, db):
    # Catches: a join or a partial restoration that changes the outage silently, or is announced
    # more than once, or under another change name.
    play(grid, [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:01"), kaifa("E-A2-03", "10:02")])
    dp = str(scalar(grid, "SELECT id FROM oms_outage_events WHERE scope = 'distribution_point'"))
    listener = listen(db)
    try:
        play(grid, [kaifa("E-A2-04", "10:03", event_id="KF-JOIN-4")])
        play(grid, [kaifa("E-A2-01", "10:20", restored=True, event_id="KF-BACK-1")])
        notes = [json.loads(m.payload) for m in heard(listener, db)]
    finally:
        listener.close()
    # The fourth meter joins: 4 customers out of 4; 1 - 0.2^4 = 0.9984 -> 1.00. E-A2-01 back: 3 of 4
    # still out, the outage still open.
    assert [(n["outage_event_id"], n["change"], n["changes"], n["status"], n["scope"], n["affected_customers_count"],
             n["customers_out"], n["confidence"], n["source_event_id"]) for n in notes] == [
        (dp, "joined", ["joined"], "confirmed", "distribution_point", 4, 4, 1.0, "KF-JOIN-4"),
        (dp, "partially_restored", ["partially_restored"], "confirmed", "distribution_point", 4, 3, 1.0, "KF-BACK-1")]


# --- 8. notifications are delivered at commit, never for a rollback (SPEC §5.8) -------------------

def test_a_rolled_back_ingest_announces_nothing_and_leaves_nothing_queued(grid, db):
    # Catches: notifications sent outside the transaction (another connection, the worker before the
    # ingest commits), and outages or queue rows that survive the rollback.
    listener = listen(db)
    state = """SELECT (SELECT count(*) FROM oms_outage_events), (SELECT count(*) FROM oms_correlation_queue),
                      (SELECT count(*) FROM oms_correlation_inputs), (SELECT count(*) FROM kaifa_events),
                      (SELECT power_status FROM oms_meters WHERE meter_number = 'E-B4-04')"""
    # An adopted or updated base starts with rows of its own (the update logs a day of inputs).
    before = query(grid, state)
    assert before[0][4] == "on"
    session = psycopg2.connect(dsn(db), options="-c TimeZone=UTC")
    try:
        with session.cursor() as cur:
            cur.execute("SET oms_correlation.correlate = 'immediate'")
            session.commit()
            function, payload = kaifa("E-B4-04", "10:00", event_id="KF-ROLLED-BACK")
            cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
            # Immediate: the call correlated before returning, in this transaction.
            cur.execute("SELECT count(*) FROM oms_outage_events WHERE scope = 'service'")
            assert cur.fetchone()[0] == 1
            session.rollback()
            assert heard(listener, db) == []
            assert query(grid, state) == before
            # A committed signal: its one notification, and nothing else.
            function, payload = kaifa("E-B4-05", "10:01", event_id="KF-COMMITTED")
            cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
            session.commit()
        notes = [json.loads(m.payload) for m in heard(listener, db)]
    finally:
        session.close()
        listener.close()
    outage = str(scalar(grid, "SELECT id FROM oms_outage_events"))
    # Kaifa alone: 0.80, which reaches confirm_confidence 0.8.
    assert [(n["outage_event_id"], n["changes"], n["scope"], n["status"], n["source_event_id"]) for n in notes] == [
        (outage, ["opened", "confirmed"], "service", "confirmed", "KF-COMMITTED")]


# --- 9. oms_correlate_events for a power-on of a meter in no outage (SPEC §5.9) -------------------

CORRELATE = "SELECT oms_correlate_events('outage', %s, %s, %s, %s, %s, 30, 1000)"


def test_correlate_events_answers_null_for_a_power_on_of_a_meter_in_no_outage(grid):
    # Catches: a stored power-on treated as an id the extension never stored, so that the legacy
    # path opens an outage at the coordinates the consumer sends.
    kaifa_id = call(grid, *kaifa("E-B3-01", "10:00", restored=True, event_id="KF-ON-NO-OUTAGE"))
    onu_id = call(grid, *onu(9001, "10:01", restored=True, event_id="ONU-ON-NO-OUTAGE"))
    assert kaifa_id is not None and onu_id is not None
    counts = "SELECT (SELECT count(*) FROM oms_outage_events), (SELECT count(*) FROM oms_event_sources)"
    assert query(grid, counts) == [(0, 0)]
    # The consumers' ids (LEGACY_SCHEMA.md): Kaifa the payload's event_id, else 'kaifa_<uuid>'; ONU the
    # eventId. With coordinates and without.
    ids = [("kaifa", "KF-ON-NO-OUTAGE"), ("kaifa", f"kaifa_{kaifa_id}"), ("onu", "ONU-ON-NO-OUTAGE")]
    for source, source_id in ids:
        for lat, lng in [(31.95, 35.91), (None, None)]:
            assert scalar(grid, CORRELATE, (source, source_id, at("10:00"), lat, lng)) is None, (source, source_id, lat)
    assert query(grid, counts) == [(0, 0)]


# --- 10. leaving the roll-up window (SPEC §5.3) ---------------------------------------------------

@pytest.mark.parametrize("order", ORDERS)
def test_a_meter_that_left_the_rollup_window_does_not_roll_up(grid, order):
    # Catches: a roll-up that counts every meter off since the DP's first loss (no window), or a
    # window measured from the wrong end.
    # 10:00, 10:03, 10:06: any 5-minute window holds two of them at most (10:06 - 10:00 = 6 min):
    # three service outages at Kaifa's 0.80 each, confirmed.
    play(grid, [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:03"), kaifa("E-A2-03", "10:06")], order)
    assert picture(grid) == [
        ("E-A2-01", "service", "confirmed", 1, 1, "0.80", "10:00", None, ["E-A2-01"], None),
        ("E-A2-02", "service", "confirmed", 1, 1, "0.80", "10:03", None, ["E-A2-02"], None),
        ("E-A2-03", "service", "confirmed", 1, 1, "0.80", "10:06", None, ["E-A2-03"], None)]
    assert scalar(grid, "SELECT count(*) FROM oms_outage_events WHERE scope <> 'service'") == 0


@pytest.mark.parametrize("order", ORDERS)
def test_meters_within_the_rollup_window_roll_up(grid, order):
    # Catches: a window that is too narrow (or exclusive of a 4-minute spread).
    # 10:00, 10:03, 10:04: all three within 4 min <= 5 min: one DP outage from 10:00;
    # 1 - 0.2^3 = 0.992 -> 0.99.
    play(grid, [kaifa("E-A2-01", "10:00"), kaifa("E-A2-02", "10:03"), kaifa("E-A2-03", "10:04")], order)
    assert picture(grid) == [("DP-A2", "distribution_point", "confirmed", 3, 3, "0.99", "10:00", None,
                              meters("E-A2", [1, 2, 3]), None)]


# --- 11. inactive meters are not customers served (SPEC §5.10) ------------------------------------

INDICES = """SELECT device, customers_served, customers_interrupted, saifi
             FROM oms_reliability_indices('2025-10-01 10:00+00', '2025-10-01 12:00+00', %s)"""


def test_inactive_meters_are_not_customers_served(grid):
    # Catches: customers served counted over every meter of the device, whatever its status.
    play(grid, [kaifa("E-A2-01", "10:00"), kaifa("E-A2-01", "10:30", restored=True)])
    d = Decimal
    # Before: F-A serves 40 customers; one sustained interruption (30 min): SAIFI 1/40 = 0.025.
    assert [r for r in query(grid, INDICES, ("feeder",)) if r[0] == "F-A"] == [("F-A", 40, 1, d("0.025000"))]
    query(grid, "UPDATE oms_meters SET status = 'inactive' WHERE meter_number IN ('E-A3-09', 'E-A4-10')")
    # Two of F-A's meters inactive: 40 - 2 = 38 customers served; SAIFI 1/38 = 0.0263157... -> 0.026316.
    # SS-ENG: 80 - 2 = 78; SAIFI 1/78 = 0.0128205... -> 0.012821. F-B unchanged.
    assert {r[0]: r for r in query(grid, INDICES, ("feeder",)) if r[0] in ("F-A", "F-B")} == {
        "F-A": ("F-A", 38, 1, d("0.026316")), "F-B": ("F-B", 40, 0, d("0.000000"))}
    assert [r for r in query(grid, INDICES, ("substation",)) if r[0] == "SS-ENG"] == [("SS-ENG", 78, 1, d("0.012821"))]
