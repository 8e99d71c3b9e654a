"""pgbench scripts for the four ingest functions and the plain-INSERT reference limit.

Every transaction picks a random ONU, meter or ticket and a fresh event id; the JSON is built by
the server in the same way for the function and for the plain INSERT, so their ratio measures
what the function adds.
"""

# Random choices shared by all scripts. ONU ids and meter numbers follow bench/grid.sql.
HEADER = r"""
\set onu random(1000000, 1040287)
\set meter random(1, 161150)
\set e random(1, 9223372036854775806)
\set sec random(0, 31535999)
"""

TIME = "to_char(timestamptz '2025-01-01 00:00:00+00' + :sec * interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
# A storm as it arrives: each event stamped with the moment it is sent, so events come in
# event-time order (the year-wide random TIME makes every signal a late one).
TIME_LIVE = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
TIME_MICROS = ("to_char(timestamptz '2025-01-01 00:00:00+00' + :sec * interval '1 second' + (:e % 1000000) * "
               "interval '1 microsecond', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")

PAYLOADS = {
    "onu": (
        "jsonb_build_object('eventId', 'B' || :e, 'type', CASE :e % 2 WHEN 0 THEN 'ONU_LastGaspAlert' "
        "ELSE 'ONU_PowerRestored' END, 'onuId', :onu, 'onuSerial', '', 'timestamp', " + TIME + ", "
        "'alarmData', jsonb_build_object('category', 'power', 'alarmType', 'last_gasp'), 'nmsType', 'FiberTech')"
    ),
    "kaifa": (
        "jsonb_build_object('message_type', 'EndDeviceEvent', 'timestamp', " + TIME + ", "
        "'header', jsonb_build_object('verb', 'created', 'noun', 'EndDeviceEvents', 'revision', '2.0', "
        "'timestamp', " + TIME + ", 'source', 'HES', 'async_reply_flag', 'false', 'ack_required', 'true', "
        "'message_id', 'BK' || :e, 'correlation_id', 'c' || :e, 'user', jsonb_build_object('ns1:UserID', 'hes', "
        "'ns1:Organization', 'KAIFA')), "
        "'payload', jsonb_build_object('event_id', 'BKE' || :e, 'created_date_time', " + TIME + ", "
        "'issuer_id', 'HES01', 'reason', 'Power outage', 'severity', 'low', "
        "'event_type', jsonb_build_object('@ref', CASE :e % 2 WHEN 0 THEN '3.26.0.85' ELSE '3.26.0.216' END), "
        "'assets', jsonb_build_object('ns2:mRID', 'BA' || :meter, 'ns2:Names', jsonb_build_object('ns2:name', "
        "'Meter ' || :meter)), 'usage_point', jsonb_build_object('ns2:mRID', 'BU' || :meter), "
        "'event_details', jsonb_build_array(jsonb_build_object('ns2:name', 'phase', 'ns2:value', 'A'), "
        "jsonb_build_object('ns2:name', 'voltage', 'ns2:value', '0')), "
        "'status', jsonb_build_object('ns2:dateTime', " + TIME + ", 'ns2:value', 'off')), "
        "'metadata', jsonb_build_object('source', 'kaifa-consumer', 'processed_at', " + TIME + "), "
        "'original_message', jsonb_build_object('source', 'HES', 'topic', 'hes-kaifa-outage-topic'))"
    ),
    "callcenter": (
        "jsonb_build_object('ticketId', 'BT' || :e, 'timestamp', " + TIME + ", "
        "'customer', jsonb_build_object('phone', '+962-7-' || :meter, 'meterNumber', 'BM' || :meter, "
        "'address', :meter || ' Bench St'), 'intake', jsonb_build_object('intakeId', 'IN' || (:e % 1000)), "
        "'source', 'bench')"
    ),
    # Microseconds from the event id: two alarms drawn at the same second are still two alarms (the
    # reference's unique alarm key would otherwise abort the run now and then).
    "scada": (
        "jsonb_build_object('eventType', 'breaker_trip', 'substationId', 'BSS1', 'feederId', 'F150', "
        "'alarmType', 'fault', 'timestamp', " + TIME_MICROS + ", 'severity', 'critical', 'reason', 'bench ' || :e)"
    ),
}

FUNCTIONS = {
    "onu": "insert_onu_event_from_json_with_meter_sync",
    "kaifa": "insert_kaifa_event_from_json_with_meter_sync",
    "callcenter": "insert_callcenter_ticket_from_json_with_meter_link",
    "scada": "insert_scada_event_with_meter_check",
}


def script(source, schema="public", live=False):
    """The pgbench script calling `source`'s function in `schema` (the extension, or the reference);
    `live`: events stamped as they are sent instead of at random times over 2025."""
    payload = PAYLOADS[source].replace(TIME, TIME_LIVE) if live else PAYLOADS[source]
    return HEADER + f"SELECT {schema}.{FUNCTIONS[source]}({payload});\n"


def plain_insert(source="onu"):
    """The physical limit: the same JSON into a bare table, one row, in the same session."""
    return HEADER + f"INSERT INTO bench_plain_insert (payload) VALUES ({PAYLOADS[source]});\n"
