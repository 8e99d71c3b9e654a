"""The scenarios of SPEC §4 on the demo grid (the users' runbook), through psycopg2."""

from conftest import call, example, query, scalar

TRIP = example("scada_breaker_trip.json")


def feeder_power(pool, feeder):
    return dict(query(pool, """SELECT m.power_status, count(*) FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id
                               WHERE f.feeder_id = %s AND m.status = 'active' GROUP BY 1""", (feeder,)))


def test_runbook_breaker_trip(pool):
    fd001_before = query(pool, """SELECT m.meter_number, m.power_status, m.communication_status, m.updated_at
        FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id WHERE f.feeder_id = 'FD001' ORDER BY 1""")
    result = call(pool, "insert_scada_event_with_meter_check", TRIP)
    assert {k: result[k] for k in ("meters_checked", "total_meters", "offline_meters", "online_meters", "unknown_meters")} == {
        "meters_checked": True, "total_meters": 150, "offline_meters": 45, "online_meters": 95, "unknown_meters": 10}
    assert set(result) >= {"scada_event_id", "meters_checked", "total_meters", "offline_meters", "online_meters",
                           "unknown_meters", "outage_event_id"}
    outage = result["outage_event_id"]
    assert outage
    # FD001 is untouched, row for row.
    assert query(pool, """SELECT m.meter_number, m.power_status, m.communication_status, m.updated_at
        FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id WHERE f.feeder_id = 'FD001' ORDER BY 1""") == fd001_before
    assert feeder_power(pool, "FD002") == {"off": 45, "on": 95, "unknown": 10}
    # Every record the runbook reads is filled in.
    assert query(pool, "SELECT affected_meter_count, outage_event_id::text, meters_checked_at IS NOT NULL FROM scada_events") == [
        (45, outage, True)]
    assert scalar(pool, "SELECT count(*) FROM scada_event_affected_meters WHERE scada_event_id = %s",
                  (result["scada_event_id"],)) == 45
    assert query(pool, """SELECT source_type, count(*), min(confidence_score)::text FROM oms_meter_status_events
                          GROUP BY 1""") == [("scada", 45, "0.90")]
    # SCADA is authoritative for its device: confirmed (SPEC §5.3); 45 customers lost power, all still out.
    assert query(pool, "SELECT status, affected_customers_count, customers_out, scope FROM oms_outage_events "
                       "WHERE id = %s", (outage,)) == [("confirmed", 45, 45, "feeder")]
    assert scalar(pool, "SELECT count(*) FROM oms_event_sources WHERE outage_event_id = %s", (outage,)) == 1
    assert scalar(pool, "SELECT count(*) FROM oms_event_timeline WHERE outage_event_id = %s", (outage,)) == 1

    # The same alarm a minute later joins the open outage.
    again = dict(TRIP, timestamp="2025-09-30T10:01:00Z")
    second = call(pool, "insert_scada_event_with_meter_check", again)
    assert second["outage_event_id"] == outage and second["outage_created"] is False
    assert scalar(pool, "SELECT count(*) FROM oms_outage_events") == 1
    assert scalar(pool, "SELECT count(*) FROM oms_event_sources WHERE outage_event_id = %s", (outage,)) == 2


def test_topology_scope_affects_every_meter(pool):
    result = call(pool, "insert_scada_event_with_meter_check", TRIP, {"oms_correlation.scada_scope": "topology"})
    assert result["total_meters"] == 150 and result["affected_meters"] == 150
    assert feeder_power(pool, "FD002") == {"off": 150}


def test_loss_of_voltage_then_restoration(pool):
    lov = call(pool, "insert_scada_event_with_meter_check", example("scada_loss_of_voltage.json"))
    assert lov["meters_checked"] is True and lov["offline_meters"] == 45
    restored = call(pool, "insert_scada_event_with_meter_check", example("scada_restoration.json"))
    assert restored["outage_event_id"] == lov["outage_event_id"]
    assert restored["restored_meters"] == 45
    assert query(pool, "SELECT status, actual_restoration_time::text FROM oms_outage_events") == [
        ("restored", "2025-09-30 11:20:00+00")]
    assert feeder_power(pool, "FD002") == {"on": 140, "unknown": 10}
    assert scalar(pool, "SELECT count(*) FROM oms_meter_status_events WHERE event_type = 'power_on' AND source_type = 'scada'") == 45


def test_informational_alarm_is_stored_not_checked(pool):
    result = call(pool, "insert_scada_event_with_meter_check",
                  dict(TRIP, eventType="MV_AlarmCommFail", alarmType="Communication"))
    assert result["meters_checked"] is False and "informational" in result["reason"]
    assert scalar(pool, "SELECT count(*) FROM scada_events") == 1
    assert scalar(pool, "SELECT count(*) FROM oms_meter_status_events") == 0


def test_onu_last_gasp_and_power_restored(pool):
    call(pool, "insert_onu_event_from_json_with_meter_sync", example("onu_last_gasp.json"))
    rows = query(pool, "SELECT meter_number, power_status, communication_status FROM oms_meters WHERE onu_id = 3230316 ORDER BY 1")
    assert rows == [("M12345678", "off", "offline"), ("M23456789", "off", "offline")]
    call(pool, "insert_onu_event_from_json_with_meter_sync", example("onu_power_restored.json"))
    rows = query(pool, "SELECT meter_number, power_status, communication_status FROM oms_meters WHERE onu_id = 3230316 ORDER BY 1")
    assert rows == [("M12345678", "on", "online"), ("M23456789", "on", "online")]
    assert query(pool, """SELECT event_type, previous_status, new_status, confidence_score::text, count(*)
                          FROM oms_meter_status_events GROUP BY 1, 2, 3, 4 ORDER BY 1""") == [
        ("power_off", "on", "off", "0.85", 2), ("power_on", "off", "on", "0.85", 2)]


def test_an_onu_without_a_serial_takes_the_first_one_an_event_carries(pool):
    # Statistics that make "serial IS NULL" look as selective as the key: the plan the first event
    # makes and keeps must still find its ONU by key.
    query(pool, """INSERT INTO onus (id, onu_serial_no) SELECT 890000 + n, 'SER' || n FROM generate_series(1, 3000) n;
                   ANALYZE onus;
                   INSERT INTO onus (id, onu_serial_no) VALUES (880001, NULL), (880002, '')""")
    before = index_scans(pool)
    for onu, serial, n in [(880001, "SN-A", 1), (880002, "SN-B", 2), (880001, "SN-C", 3)]:
        call(pool, "insert_onu_event_from_json_with_meter_sync",
             {"eventId": f"SERIAL-{n}", "type": "ONU_LastGaspAlert", "onuId": onu, "onuSerial": serial,
              "timestamp": f"2025-09-30T10:0{n}:00Z"})
    # Each event found its ONU by key, not by reading the serial-less ONUs.
    after = index_scans(pool)
    assert after["serial"] == before["serial"]
    assert after["key"] > before["key"]
    assert query(pool, "SELECT id, onu_serial_no FROM onus WHERE id IN (880001, 880002) ORDER BY 1") == [
        (880001, "SN-A"), (880002, "SN-B")]


def index_scans(pool):
    conn = pool.getconn()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_stat_force_next_flush()")
            cur.execute("SELECT pg_stat_clear_snapshot()")
            # By what the indexes cover: an adopted legacy table keeps its own index names.
            cur.execute("""SELECT CASE WHEN x.indisprimary THEN 'key' ELSE 'serial' END, sum(s.idx_scan)
                           FROM pg_stat_user_indexes s JOIN pg_index x ON x.indexrelid = s.indexrelid
                           WHERE s.relname = 'onus'
                             AND (x.indisprimary OR x.indnatts = 1 AND x.indkey[0] = (SELECT attnum FROM pg_attribute
                                  WHERE attrelid = 'onus'::regclass AND attname = 'onu_serial_no'))
                           GROUP BY 1""")
            return dict(cur.fetchall())
    finally:
        conn.autocommit = False
        pool.putconn(conn)


def test_other_onu_types_are_stored_only(pool):
    event_id = call(pool, "insert_onu_event_from_json_with_meter_sync",
                    dict(example("onu_last_gasp.json"), type="ONU_DyingGaspCleared", eventId="ONU_X"))
    assert event_id > 0
    assert scalar(pool, "SELECT count(*) FROM oms_meter_status_events") == 0


def test_kaifa_minimal_and_codes(pool):
    call(pool, "insert_kaifa_event_from_json_with_meter_sync", example("kaifa_minimal.json"))
    assert query(pool, "SELECT power_status FROM oms_meters WHERE meter_number = 'M12345678'") == [("off",)]
    full = call(pool, "insert_kaifa_event_from_json_with_meter_sync", example("kaifa_full.json"))
    assert query(pool, "SELECT power_status FROM oms_meters WHERE meter_number = 'M23456789'") == [("off",)]
    # Assets and usage points are linked to the meter.
    assert query(pool, """SELECT m.meter_number FROM kaifa_event_assets a JOIN oms_meters m ON m.id = a.meter_id
                          WHERE a.event_id = %s""", (full,)) == [("M23456789",)]
    assert query(pool, """SELECT m.meter_number FROM kaifa_event_usage_points u JOIN oms_meters m ON m.id = u.meter_id
                          WHERE u.event_id = %s""", (full,)) == [("M23456789",)]
    on = example("kaifa_full.json")
    on["header"]["message_id"] = "restore-1"
    on["payload"].update(event_id="KAIFA_EVT_RESTORE", created_date_time="2025-09-30T10:45:00Z", severity="low",
                         event_type={"@ref": "3.26.0.216"})
    call(pool, "insert_kaifa_event_from_json_with_meter_sync", on)
    assert query(pool, "SELECT power_status, communication_status FROM oms_meters WHERE meter_number = 'M23456789'") == [
        ("on", "online")]


def test_callcenter_ticket_links_and_reports(pool):
    call(pool, "insert_callcenter_ticket_from_json_with_meter_link", example("callcenter_ticket.json"))
    assert query(pool, """SELECT m.meter_number FROM callcenter_customers c JOIN oms_meters m ON m.id = c.meter_id""") == [
        ("M12345678",)]
    assert query(pool, """SELECT event_type, source_type, confidence_score::text, metadata FROM oms_meter_status_events""") == [
        ("power_off", "call_center", "0.60", {"ticket_id": "TC_TEST_001", "customer_phone": "+962-7-1234-5678"})]
    assert query(pool, "SELECT power_status FROM oms_meters WHERE meter_number = 'M12345678'") == [("on",)]
    call(pool, "insert_callcenter_ticket_from_json_with_meter_link", example("callcenter_ticket_no_meter.json"))
    assert query(pool, "SELECT meter_number, meter_id FROM callcenter_customers WHERE notes = 'whole street dark'") == [
        (None, None)]


def test_quarantine_keeps_the_payload_and_the_transaction(pool):
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT insert_onu_event_from_json_with_meter_sync(%s::jsonb)", ('{"onuId": "x"}',))
            assert cur.fetchone()[0] is None
            assert any("invalid ONU payload" in n for n in conn.notices)
            cur.execute("SELECT insert_onu_event_from_json_with_meter_sync(%s::jsonb)",
                        ('{"onuId": 5, "type": "ONU_LastGaspAlert", "timestamp": "2025-09-30T10:00:00Z"}',))
            assert cur.fetchone()[0] > 0
        conn.commit()
    finally:
        pool.putconn(conn)
    assert query(pool, "SELECT source, sqlstate, field_path FROM oms_rejected_events") == [("onu", "22P02", "onuId")]


def test_what_is_not_a_redelivery(pool):
    """The redelivery keys are exact (SPEC §6): an alarm of the same device and time with another
    eventType or alarmType, or an ONU event of the same ONU and time with another type, is a new
    event."""
    trip = {"eventType": "breaker_trip", "substationId": "SS001", "feederId": "FD002", "alarmType": "fault",
            "timestamp": "2025-09-30T10:00:00Z"}
    first = call(pool, "insert_scada_event_with_meter_check", trip)
    other_event_type = call(pool, "insert_scada_event_with_meter_check", dict(trip, eventType="MV_AlarmLossOfVoltage"))
    other_alarm_type = call(pool, "insert_scada_event_with_meter_check", dict(trip, alarmType="overcurrent"))
    same = call(pool, "insert_scada_event_with_meter_check", trip)
    ids = [r["scada_event_id"] for r in (first, other_event_type, other_alarm_type)]
    assert len(set(ids)) == 3 and not other_event_type["duplicate"] and not other_alarm_type["duplicate"]
    assert (same["scada_event_id"], same["duplicate"]) == (first["scada_event_id"], True)
    assert scalar(pool, "SELECT count(*) FROM scada_events WHERE event_timestamp = '2025-09-30T10:00:00Z'") == 3

    gasp = {"type": "ONU_LastGaspAlert", "onuId": 3230316, "timestamp": "2025-09-30T10:05:00Z"}
    onu_first = call(pool, "insert_onu_event_from_json_with_meter_sync", gasp)
    onu_other = call(pool, "insert_onu_event_from_json_with_meter_sync", dict(gasp, type="ONU_PowerRestored"))
    onu_again = call(pool, "insert_onu_event_from_json_with_meter_sync", gasp)
    assert onu_other != onu_first and onu_again == onu_first
    assert scalar(pool, "SELECT count(*) FROM onu_events WHERE onu_id = 3230316") == 2
