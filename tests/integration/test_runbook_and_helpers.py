"""The users' runbook queries, the helper functions, the views, and a consumer-shaped script."""

import os
import re
import subprocess

from conftest import EXAMPLES, REPO, call, correlating_function, dsn, example, query, scalar, demo_grid_only


def replay_samples(pool):
    for name in ["scada_breaker_trip.json", "onu_last_gasp.json", "kaifa_minimal.json", "callcenter_ticket.json"]:
        call(pool, correlating_function(name), example(name))


def statements(path):
    text = open(path).read()
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def test_verification_queries_run_unchanged(pool):
    replay_samples(pool)
    results = [query(pool, s) for s in statements(os.path.join(EXAMPLES, "verification_queries.sql"))]
    assert len(results) == 8
    latest_scada, affected, outage, onu_meters, onu_event, by_source, recent, last_hour = results
    assert latest_scada[0][1] == "breaker_trip" and len(affected) == 45
    assert len(outage) == 1
    assert [(r[0], r[1], r[2]) for r in onu_meters] in (
        [("M12345678", "off", "offline"), ("M23456789", "off", "offline")],
        [("M23456789", "off", "offline"), ("M12345678", "off", "offline")])
    # The demo grid's 177 meters; on an adopted database, plus the legacy fixture's.
    legacy_part = query(pool, f"""SELECT count(*), count(onu_id), count(asset_mrid),
        count(*) FILTER (WHERE id IN (SELECT meter_id FROM callcenter_customers WHERE meter_id IS NOT NULL))
        FROM oms_meters WHERE status = 'active' AND NOT {demo_grid_only('meter_number')}""")[0]
    assert by_source == [tuple(a + b for a, b in zip((177, 2, 2, 1), legacy_part))]
    assert len(recent) == 20
    assert recent[0][2] == "call_center" and recent[0][3] == "off → off"
    # The runbook's last query keeps the last hour of wall-clock time; the samples are from 2025.
    assert last_hour == []


def test_helpers(pool):
    assert scalar(pool, "SELECT count(*) FROM get_meters_by_feeder('FD002')") == 150
    assert scalar(pool, "SELECT count(*) FROM get_meters_by_substation('SS001')") == 172
    columns = query(pool, """SELECT pg_get_function_result('get_meters_by_feeder(varchar)'::regprocedure)""")[0][0]
    assert columns == ("TABLE(meter_id uuid, meter_number character varying, communication_status character varying, "
                       "power_status character varying, last_communication timestamp with time zone, customer_id uuid, "
                       "location_lat numeric, location_lng numeric)")
    event = scalar(pool, "SELECT update_meter_status('M-FD001-002', 'off', 'power_off', 'scada')")
    assert query(pool, "SELECT event_type, new_status FROM oms_meter_status_events WHERE id = %s", (event,)) == [
        ("power_off", "off")]
    scada_id = call(pool, "insert_scada_event_from_json", example("scada_breaker_trip.json"))
    row = query(pool, "SELECT * FROM process_scada_event_meters(%s, 'SS001', 'FD002', '2025-09-30 10:00:00+00')", (scada_id,))
    assert row[0][:4] == (150, 45, 95, 10) and row[0][4] is not None
    assert query(pool, "SELECT * FROM sync_callcenter_tickets_to_meters()") == [(0, 0, 0)]


def test_views(pool):
    summary_query = "SELECT source_type, status_events, applied_events FROM oms_source_summary"
    before = {r[0]: r[1:] for r in query(pool, summary_query)}  # the legacy audit rows, if adopted
    replay_samples(pool)
    assert query(pool, "SELECT substation_id, total_meters FROM network_substations_with_meters "
                       "WHERE substation_id LIKE 'SS%' ORDER BY 1") == [("SS001", 172), ("SS002", 5)]
    # offline_meters: power off, as the legacy view counted it.
    assert query(pool, "SELECT feeder_id, total_meters, offline_meters FROM network_feeders_with_meters "
                       "WHERE feeder_id LIKE 'FD%' ORDER BY 1") == [
        ("FD001", 22, 2), ("FD002", 150, 45), ("FD003", 5, 0)]
    assert scalar(pool, "SELECT count(*) FROM oms_meters_with_topology WHERE feeder_code = 'FD002'") == 152
    # FD002: the trip's outage, 45 customers. FD001: the ONU's last gasp opened the building's service
    # outage (its 2 meters, 2 customers; 2 of DP-FD001-01's 6 meters is below both DP thresholds), and
    # the Kaifa message and the call about M12345678 joined it as sources.
    assert query(pool, "SELECT feeder_code, scope, affected_customers_count, confidence_score::text "
                       "FROM oms_active_outages WHERE feeder_code LIKE 'FD%' ORDER BY 1") == [
        ("FD001", "service", 2, "0.95"), ("FD002", "feeder", 45, "1.00")]
    summary = {r[0]: r[1:] for r in query(pool, summary_query)}
    added = {source: tuple(a - b for a, b in zip(counts, before.get(source, (0, 0)))) for source, counts in summary.items()}
    assert added == {"scada": (45, 45), "onu": (2, 2), "kaifa": (1, 1), "call_center": (1, 0)}


def test_consumer_shaped_script_runs_the_whole_scenario(db, pool):
    run = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "demo", "replay.py"), "--dsn", dsn(db),
                          "--examples", EXAMPLES], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert re.search(r'insert_scada_event_with_meter_check -> \{.*"offline_meters": 45.*"online_meters": 95.*'
                     r'"total_meters": 150, "unknown_meters": 10\}', out)
    assert re.search(r"insert_onu_event_from_json_with_meter_sync -> \d+\n", out)
    assert '"duplicate": true' in out
    assert "WARNING:  invalid ONU payload" in out
    # The building's outage ends with the ONU's power-restored at 10:41, the feeder's with SCADA's at 11:20.
    assert query(pool, "SELECT status, affected_customers_count, actual_restoration_time::text FROM oms_outage_events "
                       "ORDER BY 2") == [("restored", 2, "2025-09-30 10:41:00+00"), ("restored", 45, "2025-09-30 11:20:00+00")]
