"""The result contract of insert_scada_event_with_meter_check (SPEC §4.1, issue 13): every path
returns every key the README documents, and each key holds what that path did. The consumers log
these keys, so a key missing on one path is a consumer's KeyError."""

from conftest import call, example, query, scalar

KEYS = {"scada_event_id", "duplicate", "classification", "meters_checked", "scope", "scada_scope", "total_meters",
        "offline_meters", "online_meters", "unknown_meters", "affected_meters", "restored_meters",
        "outage_event_id", "outage_created", "restored_outages", "superseded", "reason"}

CHECK = "insert_scada_event_with_meter_check"


def alarm(event_type, at, substation="SS001", feeder="FD002", alarm_type=None):
    payload = {"eventType": event_type, "substationId": substation, "timestamp": at}
    if feeder is not None:
        payload["feederId"] = feeder
    if alarm_type is not None:
        payload["alarmType"] = alarm_type
    return payload


def alarm_row(pool, scada_event_id):
    """What the row a result names holds: its time, substation and feeder (the payload's own)."""
    return query(pool, "SELECT to_char(event_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                       "substation_id, feeder_id FROM scada_events WHERE id = %s", (scada_event_id,))


def outage_row(pool, outage_event_id):
    """The outage a result names: its device (by name), scope, start and the alarms among its sources."""
    return query(pool, """SELECT coalesce(f.feeder_id, s.substation_id), o.scope,
                                 to_char(o.first_detected_at AT TIME ZONE 'UTC', 'HH24:MI'),
                                 ARRAY(SELECT es.source_event_id::text FROM oms_event_sources es
                                       WHERE es.outage_event_id = o.id AND es.source_type = 'scada' ORDER BY 1)
                          FROM oms_outage_events o LEFT JOIN network_feeders f ON 'feeder:' || f.id = o.device_key
                          LEFT JOIN network_substations s ON 'substation:' || s.id = o.device_key
                          WHERE o.id = %s""", (outage_event_id,))


def test_every_path_returns_every_key_with_what_it_did(pool):
    results = {}
    results["outage"] = call(pool, CHECK, example("scada_breaker_trip.json"))
    results["join"] = call(pool, CHECK, alarm("breaker_trip", "2025-09-30T10:01:00Z"))
    results["redelivery"] = call(pool, CHECK, example("scada_breaker_trip.json"))
    results["restoration"] = call(pool, CHECK, example("scada_restoration.json"))
    results["informational"] = call(pool, CHECK, alarm("MV_AlarmDoorOpen", "2025-09-30T11:30:00Z", alarm_type="Intrusion"))
    results["unknown substation"] = call(pool, CHECK, alarm("breaker_trip", "2025-09-30T11:31:00Z", "SS999", "FD999"))
    # A feeder nobody knows on a known substation: the substation is the scope (SPEC §4.1 step 2).
    results["unknown feeder"] = call(pool, CHECK, alarm("breaker_trip", "2025-09-30T10:05:00Z", "SS002", "FD999"))
    # First stored without a check, then delivered to the checking function.
    unchecked = alarm("breaker_trip", "2025-09-30T11:33:00Z")
    call(pool, "insert_scada_event_from_json", unchecked)
    results["redelivery fallback"] = call(pool, CHECK, unchecked)

    assert {path: set(result) for path, result in results.items()} == {path: KEYS for path in results}

    # The ids a result gives are not read back from the tables: each must name the row of its own
    # payload, and the calls must agree with each other (the same alarm, the same outage).
    trip_id = results["outage"]["scada_event_id"]
    join_id = results["join"]["scada_event_id"]
    restoration_id = results["restoration"]["scada_event_id"]
    outage = results["outage"]["outage_event_id"]
    assert alarm_row(pool, trip_id) == [("2025-09-30T10:00:00Z", "SS001", "FD002")]
    assert alarm_row(pool, join_id) == [("2025-09-30T10:01:00Z", "SS001", "FD002")]
    assert alarm_row(pool, restoration_id) == [(example("scada_restoration.json")["timestamp"], "SS001", "FD002")]
    # Its SCADA sources: both trips, and the restoration that ended it (recorded, weighing nothing).
    assert outage_row(pool, outage) == [("FD002", "feeder", "10:00", sorted([trip_id, join_id, restoration_id]))]
    assert len({trip_id, join_id, restoration_id}) == 3
    common = {"duplicate": False, "superseded": False, "scada_scope": "evidence", "restored_meters": 0,
              "restored_outages": [], "reason": None}
    fd002 = {"total_meters": 150, "offline_meters": 45, "online_meters": 95, "unknown_meters": 10}
    expected = {
        "outage": {**common, **fd002, "scada_event_id": trip_id, "classification": "outage", "meters_checked": True,
                   "scope": "feeder", "affected_meters": 45, "outage_event_id": outage, "outage_created": True},
        # A minute later the same 45 meters are off (now by their power status) and the rest as before.
        "join": {**common, **fd002, "scada_event_id": join_id,
                 "classification": "outage", "meters_checked": True, "scope": "feeder", "affected_meters": 45,
                 "outage_event_id": outage, "outage_created": False},
        "redelivery": {**common, **fd002, "duplicate": True, "scada_event_id": trip_id, "classification": "outage",
                       "meters_checked": True, "scope": "feeder", "affected_meters": 45, "outage_event_id": outage,
                       "outage_created": True},
        # Counted at the restoration's time, when no meter has been heard from within the freshness
        # window: all 150 read offline.
        "restoration": {**common, "scada_event_id": restoration_id, "classification": "restoration",
                        "meters_checked": True, "scope": "feeder", "total_meters": 150, "offline_meters": 150,
                        "online_meters": 0, "unknown_meters": 0, "affected_meters": 0, "restored_meters": 45,
                        "restored_outages": [outage], "outage_event_id": outage, "outage_created": False},
    }
    for path, want in expected.items():
        assert results[path] == want, path

    info = results["informational"]
    assert alarm_row(pool, info["scada_event_id"]) == [("2025-09-30T11:30:00Z", "SS001", "FD002")]
    assert info == {**common, "scada_event_id": info["scada_event_id"],
                    "classification": "informational", "meters_checked": False, "scope": None, "total_meters": 0,
                    "offline_meters": 0, "online_meters": 0, "unknown_meters": 0, "affected_meters": 0,
                    "outage_event_id": None, "outage_created": False,
                    "reason": 'informational alarm: eventType "MV_AlarmDoorOpen" / alarmType "Intrusion" names no '
                              'outage or restoration term'}
    unknown = results["unknown substation"]["scada_event_id"]
    assert alarm_row(pool, unknown) == [("2025-09-30T11:31:00Z", "SS999", "FD999")]
    assert results["unknown substation"] == {
        **common, "scada_event_id": unknown, "classification": "outage",
        "meters_checked": False, "scope": None, "total_meters": 0, "offline_meters": 0, "online_meters": 0,
        "unknown_meters": 0, "affected_meters": 0, "outage_event_id": None, "outage_created": False,
        "reason": 'unknown substation "SS999" and unknown feeder "FD999": event stored, no meters checked'}
    # SS002's five meters (FD003, mapped) are on and heard from at 09:58: checked, none affected. The
    # alarm is authoritative for its device all the same (SPEC §5.3): it opens SS002's outage, which
    # the meters' own signals, often seconds late, will join.
    unknown_feeder = results["unknown feeder"]["scada_event_id"]
    ss002_outage = results["unknown feeder"]["outage_event_id"]
    assert alarm_row(pool, unknown_feeder) == [("2025-09-30T10:05:00Z", "SS002", "FD999")]
    assert outage_row(pool, ss002_outage) == [("SS002", "substation", "10:05", [unknown_feeder])]
    assert results["unknown feeder"] == {
        **common, "scada_event_id": unknown_feeder, "classification": "outage",
        "meters_checked": True, "scope": "substation", "total_meters": 5, "offline_meters": 0, "online_meters": 5,
        "unknown_meters": 0, "affected_meters": 0, "outage_event_id": ss002_outage, "outage_created": True}
    assert query(pool, "SELECT status, confidence_score::text, affected_customers_count, customers_out "
                       "FROM oms_outage_events WHERE id = %s", (ss002_outage,)) == [("confirmed", "1.00", 0, 0)]
    fallback = results["redelivery fallback"]
    assert alarm_row(pool, fallback["scada_event_id"]) == [("2025-09-30T11:33:00Z", "SS001", "FD002")]
    assert fallback == {
        **common, "duplicate": True, "scada_event_id": fallback["scada_event_id"],
        "classification": "outage", "meters_checked": False, "scope": None, "total_meters": 0, "offline_meters": 0,
        "online_meters": 0, "unknown_meters": 0, "affected_meters": 0, "outage_event_id": None,
        "outage_created": False,
        "reason": "a redelivery of an alarm stored without a meter check; redeliveries change nothing, "
                  "so it is not checked now"}
    # The fallback wrote nothing: the alarm is still unchecked.
    assert query(pool, "SELECT meters_checked_at, check_result FROM scada_events WHERE event_timestamp = %s",
                 ("2025-09-30T11:33:00Z",)) == [(None, None)]


def test_an_alarm_older_than_its_devices_restoration_says_it_was_superseded(pool):
    call(pool, CHECK, example("scada_restoration.json"))
    late = call(pool, CHECK, alarm("breaker_trip", "2025-09-30T09:00:00Z"))
    assert set(late) == KEYS
    # As an in-order delivery: the 45 meters offline at 09:00 went off then, and back on at the
    # restoration's 11:20, which was handled first.
    assert (late["superseded"], late["affected_meters"], late["restored_meters"], late["outage_created"]) == (
        True, 45, 45, True)
    assert late["reason"].startswith("a newer restoration of this device was already handled")
    assert scalar(pool, "SELECT status FROM oms_outage_events WHERE id = %s", (late["outage_event_id"],)) == "restored"
    assert query(pool, """SELECT power_status, last_event_at::text, count(*) FROM oms_meters
                          WHERE meter_number LIKE 'M-FD002-%' AND status = 'active' GROUP BY 1, 2 ORDER BY 1, 2""") == [
        ("on", "2025-09-30 11:20:00+00", 45), ("on", None, 95), ("unknown", None, 10)]
