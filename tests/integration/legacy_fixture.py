"""A database built the way the legacy SQL scripts built it (issue 10), generated from
../shared/LEGACY_SCHEMA.md through legacy_schema.py, so that adoption is tested on every legacy
table, column type, default, constraint, index, trigger, view and function, with rows in every column.

    build(cur)                 # cur: psycopg2 cursor, autocommit, on an empty database
    table_fingerprints(cur)    # {table: (rows, md5)} over the legacy columns, to compare after adoption

The DDL comes from the parsed document; only what the document cannot say is written here: the
function bodies and view queries (plausible legacy PL/pgSQL: caller's rights, no pinned
search_path), the registry, and the events ingested through the old functions. Device names (LSS…,
LFD…, LDP…, LC…, LM…, ONUs 41000xx) stay clear of the demo grid's (SS001, FD001…, M…).
"""

import json

from psycopg2.extensions import quote_ident

import legacy_schema

SCHEMA = legacy_schema.load()
LEGACY_TABLES = list(SCHEMA.tables)
PARTITIONS = 4


def build(cur):
    """Creates the legacy schema, loads a registry, and ingests events through the old functions."""
    cur.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')  # the legacy defaults call uuid_generate_v4()
    create_tables(cur)
    create_keys(cur)
    create_indexes(cur)
    create_functions(cur)
    create_triggers(cur)
    create_views(cur)
    seed_configuration(cur)
    load_registry(cur)
    ingest_events(cur)
    fill_what_ingestion_left_empty(cur)
    grant_consumer_role(cur)


# --- Schema, from the document ------------------------------------------------------------------

def serial_sequence(default):
    """`nextval('meters_id_seq'::regclass)` -> 'meters_id_seq': the column was declared serial."""
    if default.startswith("nextval('"):
        return default.split("'")[1]
    return None


def create_tables(cur):
    """Every table with its columns in document order, types, NOT NULL and defaults; serial
    sequences owned by their column; partitioned tables hashed on id into 4 partitions."""
    for table in SCHEMA.tables.values():
        sequences = {}
        for column, default in table.defaults.items():
            if serial_sequence(default):
                sequences[column] = serial_sequence(default)
                cur.execute(f"CREATE SEQUENCE {sequences[column]} AS {table.columns[column].type}")
        columns = []
        for name, column in table.columns.items():
            definition = f"{quote_ident(name, cur)} {column.type}"
            if column.not_null:
                definition += " NOT NULL"
            if name in table.defaults:
                definition += f" DEFAULT {table.defaults[name]}"
            columns.append(definition)
        partitioning = " PARTITION BY HASH (id)" if table.partitioned else ""
        cur.execute(f"CREATE TABLE {table.name} ({', '.join(columns)}){partitioning}")
        for column, sequence in sequences.items():
            cur.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table.name}.{column}")
        if table.partitioned:
            for remainder in range(PARTITIONS):
                cur.execute(f"CREATE TABLE {table.name}_p{remainder} PARTITION OF {table.name} "
                            f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {remainder})")


def create_keys(cur):
    """Primary and unique keys of every table first, so that every foreign key finds its target."""
    constraints = [(t.name, c) for t in SCHEMA.tables.values() for c in t.constraints]
    for table, constraint in sorted(constraints, key=lambda tc: tc[1].startswith("FOREIGN KEY")):
        cur.execute(f"ALTER TABLE {table} ADD {constraint}")


def index_name(table, definition):
    """`btree ("timestamp" DESC)` on oms_event_timeline -> idx_oms_event_timeline_timestamp."""
    columns = definition.split("(", 1)[1].rstrip(")").replace('"', "").replace(" DESC", "")
    return f"idx_{table}_" + "_".join(c.strip() for c in columns.split(","))


def create_indexes(cur):
    for table in SCHEMA.tables.values():
        for definition in table.indexes:
            cur.execute(f"CREATE INDEX {index_name(table.name, definition)} ON {table.name} USING {definition}")


def create_triggers(cur):
    for table in SCHEMA.tables.values():
        for name, definition in table.triggers:
            cur.execute(f"CREATE TRIGGER {name} {definition}")


def create_views(cur):
    """The document names each view's columns; the queries here produce them with the legacy types."""
    for name, columns in SCHEMA.views.items():
        cur.execute(f"CREATE VIEW {name} ({', '.join(columns)}) AS {VIEW_QUERIES[name]}")


def create_functions(cur):
    """Signatures from the document, with the argument defaults SPEC §2 gives the DBAs' helpers."""
    for function in SCHEMA.functions:
        arguments = ", ".join(
            f"{name} {type_}" + (f" DEFAULT {ARGUMENT_DEFAULTS[function.name, name]}"
                                 if (function.name, name) in ARGUMENT_DEFAULTS else "")
            for name, type_ in function.arguments)
        body = UPDATED_AT_BODY if function.returns == "trigger" else FUNCTION_BODIES[function.name]
        cur.execute(f"CREATE FUNCTION {function.name}({arguments}) RETURNS {function.returns} "
                    f"LANGUAGE plpgsql AS $body$\n{body}\n$body$")


ARGUMENT_DEFAULTS = {
    ("update_meter_status", "p_source_event_id"): "NULL",
    ("update_meter_status", "p_event_timestamp"): "now()",
    ("update_meter_status", "p_metadata"): "NULL",
    ("process_scada_event_meters", "p_feeder_id"): "NULL",
    ("process_scada_event_meters", "p_event_timestamp"): "now()",
}

VIEW_QUERIES = {
    "network_feeders_with_meters": """
        SELECT f.id, f.feeder_id, f.name, f.substation_id, s.substation_id, s.name, f.location_lat, f.location_lng,
               f.status, count(m.id), count(m.id) FILTER (WHERE m.power_status = 'on'),
               count(m.id) FILTER (WHERE m.power_status = 'off'),
               count(m.id) FILTER (WHERE m.power_status = 'unknown')
        FROM network_feeders f
        JOIN network_substations s ON s.id = f.substation_id
        LEFT JOIN oms_meters m ON m.feeder_id = f.id AND m.status = 'active'
        GROUP BY f.id, s.id""",
    "network_substations_with_meters": """
        SELECT s.id, s.substation_id, s.name, s.location_lat, s.location_lng, s.status, count(m.id),
               count(m.id) FILTER (WHERE m.power_status = 'on'),
               count(m.id) FILTER (WHERE m.power_status = 'off'),
               count(m.id) FILTER (WHERE m.power_status = 'unknown'),
               count(m.id) FILTER (WHERE m.communication_status = 'offline')
        FROM network_substations s
        LEFT JOIN oms_meters m ON m.substation_id = s.id AND m.status = 'active'
        GROUP BY s.id""",
    "oms_active_outages": """
        SELECT o.id, o.event_id, o.event_type, o.status, o.severity, o.confidence_score,
               o.affected_customers_count, o.first_detected_at, o.estimated_restoration_time,
               s.name, f.name, dp.name, count(es.id), string_agg(DISTINCT es.source_type, ', ')
        FROM oms_outage_events o
        LEFT JOIN network_substations s ON s.id = o.substation_id
        LEFT JOIN network_feeders f ON f.id = o.feeder_id
        LEFT JOIN network_distribution_points dp ON dp.id = o.dp_id
        LEFT JOIN oms_event_sources es ON es.outage_event_id = o.id
        WHERE o.status IN ('detected', 'confirmed', 'in_progress')
        GROUP BY o.id, s.id, f.id, dp.id""",
    "oms_correlation_summary": """
        SELECT o.id, o.event_id, o.status, o.confidence_score, count(es.id),
               count(es.id) FILTER (WHERE es.source_type = 'scada'),
               count(es.id) FILTER (WHERE es.source_type = 'kaifa'),
               count(es.id) FILTER (WHERE es.source_type = 'onu'),
               count(es.id) FILTER (WHERE es.source_type = 'call_center'),
               min(es.detected_at), max(es.detected_at)
        FROM oms_outage_events o
        LEFT JOIN oms_event_sources es ON es.outage_event_id = o.id
        GROUP BY o.id""",
    "oms_meters_with_topology": """
        SELECT m.id, m.meter_number, m.meter_type, m.communication_status, m.power_status, m.last_communication,
               m.last_power_change, m.location_lat, m.location_lng, c.customer_id, c.phone, c.address,
               s.substation_id, s.name, f.feeder_id, f.name, dp.dp_id, dp.name
        FROM oms_meters m
        LEFT JOIN oms_customers c ON c.id = m.customer_id
        LEFT JOIN network_substations s ON s.id = m.substation_id
        LEFT JOIN network_feeders f ON f.id = m.feeder_id
        LEFT JOIN network_distribution_points dp ON dp.id = m.dp_id""",
}

UPDATED_AT_BODY = "BEGIN NEW.updated_at := CURRENT_TIMESTAMP; RETURN NEW; END"

# The old functions, abridged: each stores what the samples in ../shared/examples carry and does
# the meter work the legacy way, one meter at a time.
FUNCTION_BODIES = {
    "haversine_distance_meters": """
DECLARE
    a double precision := sin(radians(lat2 - lat1) / 2) ^ 2
        + cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2;
BEGIN
    RETURN 2 * 6371000 * asin(sqrt(a));
END""",
    "get_meters_by_feeder": """
BEGIN
    RETURN QUERY
    SELECT m.id, m.meter_number, m.communication_status, m.power_status, m.last_communication, m.customer_id,
           m.location_lat, m.location_lng
    FROM oms_meters m JOIN network_feeders f ON f.id = m.feeder_id
    WHERE f.feeder_id = p_feeder_id AND m.status = 'active'
    ORDER BY m.meter_number;
END""",
    "get_meters_by_substation": """
BEGIN
    RETURN QUERY
    SELECT m.id, m.meter_number, m.communication_status, m.power_status, m.last_communication, m.customer_id,
           m.location_lat, m.location_lng
    FROM oms_meters m JOIN network_substations s ON s.id = m.substation_id
    WHERE s.substation_id = p_substation_id AND m.status = 'active'
    ORDER BY m.meter_number;
END""",
    "update_meter_status": """
DECLARE
    v_meter oms_meters%ROWTYPE;
    v_status_event uuid;
BEGIN
    SELECT * INTO v_meter FROM oms_meters WHERE meter_number = p_meter_number;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Meter % not found', p_meter_number;
    END IF;
    INSERT INTO oms_meter_status_events (meter_id, event_type, source_type, source_event_id, previous_status,
                                         new_status, event_timestamp, confidence_score, metadata)
    VALUES (v_meter.id, p_event_type, p_source_type, p_source_event_id, v_meter.power_status, p_new_status,
            p_event_timestamp,
            CASE p_source_type WHEN 'scada' THEN 0.90 WHEN 'kaifa' THEN 0.90 WHEN 'onu' THEN 0.85
                               WHEN 'call_center' THEN 0.60 ELSE 1.00 END,
            p_metadata)
    RETURNING id INTO v_status_event;
    UPDATE oms_meters SET power_status = p_new_status, last_power_change = p_event_timestamp,
                          last_status_change = p_event_timestamp
    WHERE id = v_meter.id;
    RETURN v_status_event;
END""",
    "process_scada_event_meters": """
DECLARE
    v_substation network_substations%ROWTYPE;
    v_feeder uuid;
    v_meter record;
    v_total integer := 0;
    v_offline integer := 0;
    v_online integer := 0;
    v_unknown integer := 0;
    v_outage uuid;
BEGIN
    SELECT * INTO v_substation FROM network_substations s WHERE s.substation_id = p_substation_id;
    SELECT f.id INTO v_feeder FROM network_feeders f WHERE f.feeder_id = p_feeder_id;
    FOR v_meter IN
        SELECT m.id, m.meter_number, m.power_status, m.communication_status FROM oms_meters m
        WHERE m.status = 'active'
          AND (m.feeder_id = v_feeder OR (v_feeder IS NULL AND m.substation_id = v_substation.id))
    LOOP
        v_total := v_total + 1;
        IF v_meter.power_status = 'off' OR v_meter.communication_status = 'offline' THEN
            v_offline := v_offline + 1;
            INSERT INTO scada_event_affected_meters (scada_event_id, meter_id, meter_status_before, meter_status_after)
            VALUES (p_scada_event_id, v_meter.id, v_meter.power_status, 'off');
            PERFORM update_meter_status(v_meter.meter_number, 'off', 'power_off', 'scada', p_scada_event_id::text,
                                        p_event_timestamp, jsonb_build_object('substation_id', p_substation_id,
                                                                              'feeder_id', p_feeder_id));
        ELSIF v_meter.power_status = 'on' THEN
            v_online := v_online + 1;
        ELSE
            v_unknown := v_unknown + 1;
        END IF;
    END LOOP;
    IF v_offline > 0 THEN
        INSERT INTO oms_outage_events (event_id, event_type, severity, confidence_score, affected_customers_count,
                                       description, event_latitude, event_longitude, substation_id, feeder_id,
                                       first_detected_at)
        VALUES ('OMS_SCADA_' || to_char(p_event_timestamp AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS') || '_'
                    || left(p_scada_event_id::text, 8),
                'outage', 'high', 0.90, v_offline, 'SCADA alarm on ' || p_substation_id || '/' || p_feeder_id,
                v_substation.location_lat, v_substation.location_lng, v_substation.id, v_feeder, p_event_timestamp)
        RETURNING id INTO v_outage;
        INSERT INTO oms_event_sources (outage_event_id, source_type, source_event_id, source_table,
                                       correlation_weight, detected_at)
        VALUES (v_outage, 'scada', p_scada_event_id::text, 'scada_events', 1.00, p_event_timestamp);
        INSERT INTO oms_event_timeline (outage_event_id, event_type, status, description, source, "timestamp", metadata)
        VALUES (v_outage, 'outage_detected', 'detected', 'Outage detected by SCADA', 'scada', p_event_timestamp,
                jsonb_build_object('total_meters', v_total, 'offline_meters', v_offline));
    END IF;
    UPDATE scada_events SET affected_meter_count = v_offline, meters_checked_at = now(), outage_event_id = v_outage
    WHERE id = p_scada_event_id;
    RETURN QUERY SELECT v_total, v_offline, v_online, v_unknown, v_outage;
END""",
    "insert_scada_event_from_json": """
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO scada_raw_messages (raw_payload) VALUES (json_data);
    INSERT INTO scada_events (event_type, substation_id, feeder_id, main_station_id, alarm_type, event_timestamp,
                              voltage, severity, reason, latitude, longitude, source)
    VALUES (json_data->>'eventType', json_data->>'substationId', json_data->>'feederId', json_data->>'mainStationId',
            json_data->>'alarmType', (json_data->>'timestamp')::timestamptz, (json_data->>'voltage')::numeric,
            json_data->>'severity', json_data->>'reason', (json_data->'coordinates'->>'lat')::numeric,
            (json_data->'coordinates'->>'lng')::numeric, COALESCE(json_data->>'source', 'SCADA'))
    RETURNING id INTO v_id;
    RETURN v_id;
END""",
    "insert_scada_event_with_meter_check": """
DECLARE
    v_id uuid := insert_scada_event_from_json(json_data);
    v_check record;
BEGIN
    IF lower(concat_ws(' ', json_data->>'eventType', json_data->>'alarmType'))
       !~ '(fault|trip|de-energized|loss|outage|failure)' THEN
        RETURN jsonb_build_object('scada_event_id', v_id, 'meters_checked', false, 'reason', 'not an outage alarm');
    END IF;
    SELECT * INTO v_check FROM process_scada_event_meters(v_id, json_data->>'substationId', json_data->>'feederId',
                                                         (json_data->>'timestamp')::timestamptz);
    RETURN jsonb_build_object('scada_event_id', v_id, 'meters_checked', true, 'total_meters', v_check.total_meters,
                              'offline_meters', v_check.offline_meters, 'online_meters', v_check.online_meters,
                              'unknown_meters', v_check.unknown_meters, 'outage_event_id', v_check.outage_event_id);
END""",
    "insert_onu_event_from_json": """
DECLARE
    v_onu integer := (json_data->>'onuId')::integer;
    v_id integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM onus WHERE id = v_onu) THEN
        INSERT INTO onus (id, onu_serial_no) VALUES (v_onu, json_data->>'onuSerial');
    END IF;
    INSERT INTO onu_events (event_id, onu_id, event_type, "timestamp", alarm_category, alarm_type, parcel_code,
                            serial_number, location_lat, location_lng, nms_type, raw_payload)
    VALUES (json_data->>'eventId', v_onu, json_data->>'type', (json_data->>'timestamp')::timestamptz,
            json_data->'alarmData'->>'category', json_data->'alarmData'->>'alarmType',
            json_data->'alarmData'->>'parcel', COALESCE(json_data->'alarmData'->>'serial', json_data->>'onuSerial'),
            (json_data->'location'->>'lat')::numeric, (json_data->'location'->>'lng')::numeric,
            json_data->>'nmsType', json_data)
    RETURNING id INTO v_id;
    RETURN v_id;
END""",
    "insert_onu_event_from_json_with_meter_sync": """
DECLARE
    v_id integer := insert_onu_event_from_json(json_data);
    v_onu integer := (json_data->>'onuId')::integer;
    v_at timestamptz := (json_data->>'timestamp')::timestamptz;
    v_power_on boolean;
    v_meter record;
    v_first_meter uuid;
BEGIN
    v_power_on := CASE json_data->>'type' WHEN 'ONU_LastGaspAlert' THEN false WHEN 'ONU_PowerRestored' THEN true END;
    IF v_power_on IS NULL THEN
        RETURN v_id;
    END IF;
    FOR v_meter IN
        SELECT m.id, m.meter_number FROM oms_meters m
        WHERE m.status = 'active'
          AND (m.onu_id = v_onu
               OR m.meter_number IN (SELECT jsonb_array_elements_text(COALESCE(json_data->'associatedMeters', '[]'))))
        ORDER BY m.meter_number
    LOOP
        PERFORM update_meter_status(v_meter.meter_number, CASE WHEN v_power_on THEN 'on' ELSE 'off' END,
                                    CASE WHEN v_power_on THEN 'power_on' ELSE 'power_off' END, 'onu',
                                    json_data->>'eventId', v_at, jsonb_build_object('onu_id', v_onu));
        UPDATE oms_meters SET communication_status = CASE WHEN v_power_on THEN 'online' ELSE 'offline' END
        WHERE id = v_meter.id;
        v_first_meter := COALESCE(v_first_meter, v_meter.id);
    END LOOP;
    UPDATE onu_events SET meter_id = v_first_meter WHERE id = v_id;
    UPDATE onus SET onu_power_flag = v_power_on, onu_power_flag_date = v_at WHERE id = v_onu;
    RETURN v_id;
END""",
    "insert_kaifa_event_from_json": """
DECLARE
    v_header jsonb := json_data->'header';
    v_payload jsonb := json_data->'payload';
    v_event uuid;
    v_header_id uuid;
    v_payload_id uuid;
    v_detail jsonb;
    v_order integer := 0;
BEGIN
    INSERT INTO kaifa_events (message_type, event_timestamp)
    VALUES (json_data->>'message_type', (json_data->>'timestamp')::timestamptz)
    RETURNING id INTO v_event;
    IF v_header IS NOT NULL THEN
        INSERT INTO kaifa_event_headers (event_id, verb, noun, revision, header_timestamp, source, async_reply_flag,
                                         ack_required, message_id, correlation_id, comment)
        VALUES (v_event, v_header->>'verb', v_header->>'noun', v_header->>'revision',
                (v_header->>'timestamp')::timestamptz, v_header->>'source', (v_header->>'async_reply_flag')::boolean,
                (v_header->>'ack_required')::boolean, v_header->>'message_id', v_header->>'correlation_id',
                v_header->>'comment')
        RETURNING id INTO v_header_id;
        IF v_header ? 'user' THEN
            INSERT INTO kaifa_event_users (header_id, user_id, organization)
            VALUES (v_header_id, v_header->'user'->>'ns1:UserID', v_header->'user'->>'ns1:Organization');
        END IF;
    END IF;
    INSERT INTO kaifa_event_payloads (event_id, event_id_value, created_date_time, issuer_id, issuer_tracking_id,
                                      reason, severity, user_id, event_type_ref)
    VALUES (v_event, v_payload->>'event_id', (v_payload->>'created_date_time')::timestamptz, v_payload->>'issuer_id',
            v_payload->>'issuer_tracking_id', v_payload->>'reason', v_payload->>'severity', v_payload->>'user_id',
            v_payload->'event_type'->>'@ref')
    RETURNING id INTO v_payload_id;
    IF v_payload ? 'assets' THEN
        INSERT INTO kaifa_event_assets (payload_id, mrid, name, name_type, name_description)
        VALUES (v_payload_id, v_payload->'assets'->>'ns2:mRID', v_payload->'assets'->'ns2:Names'->>'ns2:name',
                v_payload->'assets'->'ns2:Names'->'ns2:NameType'->>'ns2:name',
                v_payload->'assets'->'ns2:Names'->'ns2:NameType'->>'ns2:description');
    END IF;
    IF v_payload ? 'usage_point' THEN
        INSERT INTO kaifa_event_usage_points (payload_id, mrid, name, name_type, name_description)
        VALUES (v_payload_id, v_payload->'usage_point'->>'ns2:mRID',
                v_payload->'usage_point'->'ns2:Names'->>'ns2:name',
                v_payload->'usage_point'->'ns2:Names'->'ns2:NameType'->>'ns2:name',
                v_payload->'usage_point'->'ns2:Names'->'ns2:NameType'->>'ns2:description');
    END IF;
    FOR v_detail IN
        SELECT jsonb_array_elements(CASE jsonb_typeof(v_payload->'event_details')
                                        WHEN 'array' THEN v_payload->'event_details'
                                        WHEN 'object' THEN jsonb_build_array(v_payload->'event_details')
                                        ELSE '[]' END)
    LOOP
        INSERT INTO kaifa_event_details (payload_id, name, value, detail_order)
        VALUES (v_payload_id, v_detail->>'ns2:name', v_detail->>'ns2:value', v_order);
        v_order := v_order + 1;
    END LOOP;
    IF v_payload ? 'names' THEN
        INSERT INTO kaifa_event_names (payload_id, name, name_type, name_description)
        VALUES (v_payload_id, v_payload->'names'->>'ns2:name', v_payload->'names'->'ns2:NameType'->>'ns2:name',
                v_payload->'names'->'ns2:NameType'->>'ns2:description');
    END IF;
    IF v_payload ? 'status' THEN
        INSERT INTO kaifa_event_status (payload_id, date_time, reason, remark, value)
        VALUES (v_payload_id, (v_payload->'status'->>'ns2:dateTime')::timestamptz, v_payload->'status'->>'ns2:reason',
                v_payload->'status'->>'ns2:remark', v_payload->'status'->>'ns2:value');
    END IF;
    IF json_data ? 'metadata' THEN
        INSERT INTO kaifa_event_metadata (event_id, source, processed_at)
        VALUES (v_event, json_data->'metadata'->>'source', (json_data->'metadata'->>'processed_at')::timestamptz);
    END IF;
    IF json_data ? 'original_message' THEN
        INSERT INTO kaifa_event_original_messages (event_id, original_timestamp, source, topic, processed_at)
        VALUES (v_event, (json_data->'original_message'->>'timestamp')::timestamptz,
                json_data->'original_message'->>'source', json_data->'original_message'->>'topic',
                (json_data->'original_message'->>'processed_at')::timestamptz);
    END IF;
    RETURN v_event;
END""",
    "insert_kaifa_event_from_json_with_meter_sync": """
DECLARE
    v_event uuid := insert_kaifa_event_from_json(json_data);
    v_payload jsonb := json_data->'payload';
    v_at timestamptz := COALESCE((json_data->'payload'->>'created_date_time')::timestamptz,
                                 (json_data->>'timestamp')::timestamptz);
    v_meter oms_meters%ROWTYPE;
BEGIN
    SELECT * INTO v_meter FROM oms_meters
    WHERE asset_mrid = v_payload->'assets'->>'ns2:mRID' OR meter_number = v_payload->'assets'->>'ns2:mRID'
       OR usage_point_mrid = v_payload->'usage_point'->>'ns2:mRID'
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN v_event;
    END IF;
    UPDATE kaifa_event_assets a SET meter_id = v_meter.id FROM kaifa_event_payloads p
    WHERE a.payload_id = p.id AND p.event_id = v_event;
    UPDATE kaifa_event_usage_points u SET meter_id = v_meter.id FROM kaifa_event_payloads p
    WHERE u.payload_id = p.id AND p.event_id = v_event;
    IF lower(v_payload->>'severity') IN ('critical', 'high') OR v_payload->'event_type'->>'@ref' = '3.26.0.85' THEN
        PERFORM update_meter_status(v_meter.meter_number, 'off', 'power_off', 'kaifa', v_payload->>'event_id', v_at,
                                    jsonb_build_object('severity', v_payload->>'severity',
                                                       'reason', v_payload->>'reason'));
    ELSE
        UPDATE oms_meters SET communication_status = 'online', last_communication = v_at WHERE id = v_meter.id;
    END IF;
    RETURN v_event;
END""",
    "insert_callcenter_ticket_from_json": """
DECLARE
    v_ticket uuid;
    v_status varchar := COALESCE(json_data->>'status', 'Registered');
BEGIN
    INSERT INTO callcenter_tickets (external_ticket_id, intake_id, oms_event_id, status, intake_timestamp, source)
    VALUES (json_data->>'ticketId', json_data->'intake'->>'intakeId', json_data->'intake'->>'omsEventId', v_status,
            (json_data->>'timestamp')::timestamptz, COALESCE(json_data->>'source', 'call-center'))
    RETURNING id INTO v_ticket;
    INSERT INTO callcenter_customers (ticket_id, phone, meter_number, address, notes)
    VALUES (v_ticket, json_data->'customer'->>'phone', json_data->'customer'->>'meterNumber',
            json_data->'customer'->>'address', json_data->'customer'->>'notes');
    INSERT INTO callcenter_ticket_status_history (ticket_id, status, changed_at, note)
    VALUES (v_ticket, v_status, (json_data->>'timestamp')::timestamptz, 'ticket received');
    INSERT INTO callcenter_raw_messages (ticket_id, raw_payload) VALUES (v_ticket, json_data);
    RETURN v_ticket;
END""",
    "insert_callcenter_ticket_from_json_with_meter_link": """
DECLARE
    v_ticket uuid := insert_callcenter_ticket_from_json(json_data);
    v_meter oms_meters%ROWTYPE;
BEGIN
    SELECT * INTO v_meter FROM oms_meters WHERE meter_number = json_data->'customer'->>'meterNumber';
    IF FOUND THEN
        UPDATE callcenter_customers SET meter_id = v_meter.id WHERE ticket_id = v_ticket;
        -- A customer's report is recorded, not applied: the meter keeps its power status.
        INSERT INTO oms_meter_status_events (meter_id, event_type, source_type, source_event_id, previous_status,
                                             new_status, event_timestamp, confidence_score, metadata)
        VALUES (v_meter.id, 'power_off', 'call_center', json_data->>'ticketId', v_meter.power_status, 'off',
                (json_data->>'timestamp')::timestamptz, 0.60,
                jsonb_build_object('ticket_id', json_data->>'ticketId',
                                   'customer_phone', json_data->'customer'->>'phone'));
    END IF;
    RETURN v_ticket;
END""",
    "sync_callcenter_tickets_to_meters": """
DECLARE
    v_customer record;
    v_meter uuid;
    v_processed integer := 0;
    v_linked integer := 0;
    v_not_found integer := 0;
BEGIN
    FOR v_customer IN
        SELECT c.id, c.meter_number FROM callcenter_customers c WHERE c.meter_id IS NULL AND c.meter_number <> ''
    LOOP
        v_processed := v_processed + 1;
        SELECT m.id INTO v_meter FROM oms_meters m WHERE m.meter_number = v_customer.meter_number;
        IF FOUND THEN
            UPDATE callcenter_customers SET meter_id = v_meter WHERE id = v_customer.id;
            v_linked := v_linked + 1;
        ELSE
            v_not_found := v_not_found + 1;
        END IF;
    END LOOP;
    RETURN QUERY SELECT v_processed, v_linked, v_not_found;
END""",
    "oms_correlate_events": """
DECLARE
    v_outage uuid;
    v_weight numeric;
    v_window interval := make_interval(mins => p_correlation_window_minutes);
BEGIN
    SELECT es.outage_event_id INTO v_outage FROM oms_event_sources es
    WHERE es.source_type = p_source_type AND es.source_event_id = p_source_event_id;
    IF FOUND THEN
        RETURN v_outage;
    END IF;
    IF p_latitude IS NULL OR p_longitude IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT CASE p_source_type WHEN 'scada' THEN r.weight_scada WHEN 'kaifa' THEN r.weight_kaifa
                              WHEN 'onu' THEN r.weight_onu ELSE r.weight_call_center END
    INTO v_weight FROM oms_correlation_rules r WHERE r.rule_name = 'Standard Outage Detection';
    SELECT o.id INTO v_outage FROM oms_outage_events o
    WHERE o.status IN ('detected', 'confirmed', 'in_progress')
      AND o.first_detected_at BETWEEN p_timestamp - v_window AND p_timestamp + v_window
      AND haversine_distance_meters(o.event_latitude, o.event_longitude, p_latitude, p_longitude)
          <= p_spatial_radius_meters
    ORDER BY o.first_detected_at DESC
    LIMIT 1;
    IF v_outage IS NULL THEN
        INSERT INTO oms_outage_events (event_id, event_type, confidence_score, description, event_latitude,
                                       event_longitude, first_detected_at)
        VALUES ('OMS_' || upper(p_source_type) || '_' || p_source_event_id, p_event_type, v_weight,
                'Opened by ' || p_source_type || ' event ' || p_source_event_id, p_latitude, p_longitude, p_timestamp)
        RETURNING id INTO v_outage;
    ELSE
        UPDATE oms_outage_events SET confidence_score = LEAST(1.00, confidence_score + v_weight / 10),
                                     last_updated_at = now()
        WHERE id = v_outage;
    END IF;
    INSERT INTO oms_event_sources (outage_event_id, source_type, source_event_id, source_table, correlation_weight,
                                   detected_at)
    VALUES (v_outage, p_source_type, p_source_event_id,
            CASE p_source_type WHEN 'scada' THEN 'scada_events' WHEN 'kaifa' THEN 'kaifa_events'
                               WHEN 'onu' THEN 'onu_events' ELSE 'callcenter_tickets' END,
            v_weight, p_timestamp);
    INSERT INTO oms_event_timeline (outage_event_id, event_type, status, description, source, "timestamp")
    SELECT v_outage, 'source_correlated', o.status, 'Correlated ' || p_source_type || ' event ' || p_source_event_id,
           p_source_type, p_timestamp
    FROM oms_outage_events o WHERE o.id = v_outage;
    RETURN v_outage;
END""",
}


# --- Rows -----------------------------------------------------------------------------------------

def seed_configuration(cur):
    """The rows the legacy scripts seeded (the document's "Seed rows")."""
    cur.execute("""
        INSERT INTO oms_correlation_rules (rule_name, source_types, correlation_window_minutes, spatial_radius_meters,
                                           confidence_threshold, weight_scada, weight_kaifa, weight_onu,
                                           weight_call_center, is_active)
        VALUES ('SCADA Priority', '{scada}', 15, 500, 0.90, 1.00, 0.00, 0.00, 0.00, true),
               ('Standard Outage Detection', '{scada,kaifa,onu,call_center}', 30, 1000, 0.70,
                1.00, 0.80, 0.60, 0.40, true),
               ('Storm Mode Detection', '{scada,kaifa,onu,call_center}', 60, 2000, 0.50, 1.00, 0.80, 0.60, 0.40, true);
        INSERT INTO oms_storm_mode_config (is_active, correlation_window_minutes, spatial_radius_meters,
                                           confidence_threshold, auto_activation_threshold)
        VALUES (false, 60, 2000, 0.50, 100)""")


# Which distribution point serves customer and meter n: LDP002/LDP003 on LFD002 and LDP001 on
# LFD001 (substation LSS001), LDP004 on LFD003 (LSS002).
DP_OF_N = """CASE WHEN n <= 6 THEN 'LDP002' WHEN n <= 12 THEN 'LDP003' WHEN n <= 16 THEN 'LDP001'
                  ELSE 'LDP004' END"""


def load_registry(cur):
    """Topology, customers, ONUs and meters. Coordinates carry 8 decimals, so a narrower column
    would show. LM1-LM4 sit behind ONU 4100001, LM17 behind 4100002 (empty serial); LM6-LM10 are
    Kaifa meters with asset/usage-point mRIDs; LM19 is placed only through the mapping tables; LM20
    is inactive; LM12's power status is unknown."""
    cur.execute(f"""
        INSERT INTO network_substations (substation_id, name, location_lat, location_lng, region_code, voltage_level)
        VALUES ('LSS001', 'Amman North (legacy)', 31.95394567, 35.91051234, 'AMM', '33/11kV'),
               ('LSS002', 'Zarqa East (legacy)', 32.07281345, 36.08790123, 'ZRQ', '132/33kV');

        INSERT INTO network_feeders (feeder_id, substation_id, name, location_lat, location_lng, capacity_kva, status)
        SELECT v.feeder_id, s.id, v.name, v.lat, v.lng, v.capacity, v.status
        FROM (VALUES ('LFD001', 'LSS001', 'Feeder North 1', 31.95512345, 35.91234567, 12500.75, 'active'),
                     ('LFD002', 'LSS001', 'Feeder North 2', 31.95623456, 35.90987654, 9999999999.99, 'active'),
                     ('LFD003', 'LSS002', 'Feeder East 1', 32.07312345, 36.08876543, 7500.50, 'maintenance'))
             AS v(feeder_id, substation_code, name, lat, lng, capacity, status)
        JOIN network_substations s ON s.substation_id = v.substation_code;

        INSERT INTO network_distribution_points (dp_id, feeder_id, name, location_lat, location_lng, building_id)
        SELECT v.dp_id, f.id, v.name, v.lat, v.lng, v.building
        FROM (VALUES ('LDP001', 'LFD001', 'DP North 1-A', 31.95587654, 35.91312345, 'LB-100'),
                     ('LDP002', 'LFD002', 'DP North 2-A', 31.95698765, 35.90912345, 'LB-200'),
                     ('LDP003', 'LFD002', 'DP North 2-B', 31.95776543, 35.90854321, 'LB-300'),
                     ('LDP004', 'LFD003', 'DP East 1-A', 32.07398765, 36.08912345, 'LB-400'))
             AS v(dp_id, feeder_code, name, lat, lng, building)
        JOIN network_feeders f ON f.feeder_id = v.feeder_code;

        INSERT INTO oms_customers (customer_id, phone, address, building_id, dp_id, location_lat, location_lng, status)
        SELECT 'LC' || lpad(n::text, 3, '0'), '+962-7-5550-' || lpad(n::text, 4, '0'),
               n || ' Legacy Street, ' || CASE WHEN n <= 16 THEN 'Amman' ELSE 'Zarqa' END,
               'LB-' || lpad(n::text, 3, '0'), dp.id, dp.location_lat + n * 0.00001234,
               dp.location_lng + n * 0.00002345, CASE WHEN n = 20 THEN 'inactive' ELSE 'active' END
        FROM generate_series(1, 20) n JOIN network_distribution_points dp ON dp.dp_id = {DP_OF_N};

        INSERT INTO onus (id, fibertech_id, building_id, region_code, onu_serial_no, olt_name, area_fibertech,
                          onu_power_flag, onu_power_flag_date, location_lat, location_lng)
        VALUES (4100001, 'FT-4100001', 'LB-001', 'AMM', '48575443AB100001', 'OLT-AMM-NORTH-01', 'Amman North',
                true, '2025-09-01 08:00:00+00', 31.95701234, 35.90923456),
               (4100002, 'FT-4100002', 'LB-017', 'ZRQ', '', 'OLT-ZRQ-EAST-01', 'Zarqa East',
                true, '2025-09-01 08:00:00+00', 32.07401234, 36.08923456);

        INSERT INTO oms_onu_devices (onu_id, onu_serial_no, customer_id, dp_id, fibertech_id, olt_name, location_lat,
                                     location_lng, power_status, last_power_change)
        SELECT o.id, o.onu_serial_no, c.id, c.dp_id, o.fibertech_id, o.olt_name, o.location_lat, o.location_lng,
               true, '2025-09-01 08:00:00+00'
        FROM (VALUES (4100001, 'LC001'), (4100002, 'LC017')) AS v(onu_id, customer_code)
        JOIN onus o ON o.id = v.onu_id JOIN oms_customers c ON c.customer_id = v.customer_code;

        INSERT INTO oms_meters (meter_number, meter_type, customer_id, substation_id, feeder_id, dp_id, location_lat,
                                location_lng, building_id, communication_status, last_communication, power_status,
                                last_power_change, asset_mrid, usage_point_mrid, onu_id, onu_serial_no, status)
        SELECT 'LM' || n, CASE WHEN n BETWEEN 6 AND 10 THEN 'kaifa' ELSE 'smart' END, c.id,
               CASE WHEN n <> 19 THEN f.substation_id END, CASE WHEN n <> 19 THEN f.id END,
               CASE WHEN n <> 19 THEN dp.id END, c.location_lat, c.location_lng, c.building_id,
               'online', timestamptz '2025-09-30 09:55:00+00' + n * interval '1 second',
               CASE WHEN n = 12 THEN 'unknown' ELSE 'on' END, '2025-09-01 08:00:00+00',
               CASE WHEN n BETWEEN 6 AND 10 THEN 'LM' || n END, CASE WHEN n BETWEEN 6 AND 10 THEN 'UP-LM' || n END,
               o.id, o.onu_serial_no, CASE WHEN n = 20 THEN 'inactive' ELSE 'active' END
        FROM generate_series(1, 20) n
        JOIN oms_customers c ON c.customer_id = 'LC' || lpad(n::text, 3, '0')
        JOIN network_distribution_points dp ON dp.id = c.dp_id
        JOIN network_feeders f ON f.id = dp.feeder_id
        LEFT JOIN onus o ON o.id = CASE WHEN n <= 4 THEN 4100001 WHEN n = 17 THEN 4100002 END;

        INSERT INTO network_feeder_meters (feeder_id, meter_id, circuit_path, priority)
        SELECT dp.feeder_id, m.id, s.substation_id || '/' || f.feeder_id || '/' || dp.dp_id,
               CASE WHEN m.meter_number = 'LM19' THEN 1 ELSE 2 END
        FROM oms_meters m JOIN oms_customers c ON c.id = m.customer_id
        JOIN network_distribution_points dp ON dp.id = c.dp_id JOIN network_feeders f ON f.id = dp.feeder_id
        JOIN network_substations s ON s.id = f.substation_id;

        INSERT INTO network_substation_meters (substation_id, meter_id, feeder_id)
        SELECT f.substation_id, fm.meter_id, fm.feeder_id
        FROM network_feeder_meters fm JOIN network_feeders f ON f.id = fm.feeder_id;

        -- The ONU side's own meter list; ONU-ONLY-1 is known to the ONU system and nowhere else.
        INSERT INTO meters (meter_id, onu_id, building_id, location_lat, location_lng, oms_meter_id)
        SELECT meter_number, onu_id, building_id, location_lat, location_lng, id
        FROM oms_meters WHERE onu_id IS NOT NULL;
        INSERT INTO meters (meter_id, onu_id, building_id, location_lat, location_lng)
        VALUES ('ONU-ONLY-1', 4100002, 'LB-017', 32.07412345, 36.08934567);

        INSERT INTO oms_smart_meters (meter_number, customer_id, asset_mrid, usage_point_mrid, dp_id, location_lat,
                                      location_lng, last_communication)
        SELECT meter_number, customer_id, asset_mrid, usage_point_mrid, dp_id, location_lat, location_lng,
               last_communication
        FROM oms_meters WHERE meter_type = 'kaifa'""")


# A `character varying(200)` value near its limit, for kaifa_event_details.value.
LONG_DETAIL_VALUE = ("PQ trace " + "Ua=0.0V Ub=229.8V Uc=230.1V; " * 7)[:190]


def kaifa_message(event_id, meter, severity, event_type_ref, message_id, details, at):
    """A Kaifa EndDeviceEvent shaped like ../shared/examples/kaifa_full.json."""
    return {
        "message_type": "EndDeviceEvent", "timestamp": at,
        "header": {"verb": "created", "noun": "EndDeviceEvents", "revision": "2.0", "timestamp": at,
                   "source": "HES-KAIFA", "async_reply_flag": False, "ack_required": True, "message_id": message_id,
                   "correlation_id": "corr-" + event_id, "comment": "push",
                   "user": {"ns1:UserID": "hes", "ns1:Organization": "KAIFA"}},
        "payload": {
            "event_id": event_id, "created_date_time": at, "issuer_id": "HES01", "issuer_tracking_id": "T-" + event_id,
            "reason": "Power outage" if severity == "critical" else "Communication restored", "severity": severity,
            "user_id": "system", "event_type": {"@ref": event_type_ref},
            "assets": {"ns2:mRID": meter, "ns2:Names": {"ns2:name": "Meter " + meter, "ns2:NameType": {
                "ns2:name": "MeterNo", "ns2:description": "meter number"}}},
            "usage_point": {"ns2:mRID": "UP-" + meter, "ns2:Names": {"ns2:name": "Usage point " + meter,
                            "ns2:NameType": {"ns2:name": "UsagePoint", "ns2:description": "usage point"}}},
            "event_details": [{"ns2:name": name, "ns2:value": value} for name, value in details],
            "names": {"ns2:name": "PowerOff" if severity == "critical" else "CommRestored",
                      "ns2:NameType": {"ns2:name": "EventName", "ns2:description": "event"}},
            "status": {"ns2:dateTime": at, "ns2:reason": "outage" if severity == "critical" else "link up",
                       "ns2:remark": "reported by HES", "ns2:value": "off" if severity == "critical" else "on"},
        },
        "metadata": {"source": "kaifa-consumer", "processed_at": at},
        "original_message": {"timestamp": at, "source": "HES-KAIFA", "topic": "hes-kaifa-outage-topic",
                             "processed_at": at},
    }


def ingest_events(cur):
    """Events through the old functions, as the consumers sent them, then the operations API's
    oms_correlate_events call for the ones it placed on the map: an ONU last gasp darkens LM1-LM5,
    the SCADA trip on LFD002 finds them and opens an outage, Kaifa, ONU and a call-center ticket
    join it, and a ticket in Zarqa opens a second one."""
    def ingest(function, payload):
        cur.execute(f"SELECT {function}(%s::jsonb)", (json.dumps(payload),))
        return cur.fetchone()[0]

    def correlate(source_type, source_event_id, at, lat, lng):
        cur.execute("SELECT oms_correlate_events('outage', %s, %s, %s, %s, %s, 30, 1000)",
                    (source_type, source_event_id, at, lat, lng))

    ingest("insert_onu_event_from_json_with_meter_sync", {
        "eventId": "LONU_EVT_0001", "type": "ONU_LastGaspAlert", "onuId": 4100001, "onuSerial": "48575443AB100001",
        "timestamp": "2025-09-30T10:05:00Z", "location": {"lat": 31.95701234, "lng": 35.90923456},
        "associatedMeters": ["LM5"], "nmsType": "FiberTech",
        "alarmData": {"category": "power", "alarmType": "last_gasp", "parcel": "PCL-4100001",
                      "serial": "48575443AB100001"}})
    ingest("insert_scada_event_with_meter_check", {
        "eventType": "breaker_trip", "substationId": "LSS001", "feederId": "LFD002", "mainStationId": "LMS001",
        "alarmType": "fault", "timestamp": "2025-09-30T10:06:00Z", "voltage": 0.0, "severity": "critical",
        "reason": "Overcurrent detected", "coordinates": {"lat": 31.95623456, "lng": 35.90987654},
        "source": "SCADA-Legacy"})
    ingest("insert_kaifa_event_from_json_with_meter_sync", kaifa_message(
        "LKAIFA_EVT_0001", "LM6", "critical", "3.26.0.85", "6b0d3c1e-0a4f-4d7e-9c55-1f2e3d4c5b01",
        [("phase", "A"), ("voltage", "0"), ("diagnostic", LONG_DETAIL_VALUE)], "2025-09-30T10:07:00Z"))
    ingest("insert_kaifa_event_from_json_with_meter_sync", kaifa_message(
        "LKAIFA_EVT_0002", "LM9", "low", "3.1.0.216", "6b0d3c1e-0a4f-4d7e-9c55-1f2e3d4c5b02",
        [("signal", "-71dBm"), ("link", "up")], "2025-09-30T10:08:00Z"))
    linked_ticket = ingest("insert_callcenter_ticket_from_json_with_meter_link", {
        "ticketId": "LTC_0001", "timestamp": "2025-09-30T10:15:00Z",
        "customer": {"phone": "+962-7-5550-0007", "meterNumber": "LM7", "address": "7 Legacy Street, Amman",
                     "notes": "no power since 10:05"},
        "intake": {"intakeId": "LIN-0001", "omsEventId": "LOE-0001"}, "status": "Registered", "source": "call-center"})
    # The base function leaves the meter unlinked; the DBAs' sync links it afterwards.
    unlinked_ticket = ingest("insert_callcenter_ticket_from_json", {
        "ticketId": "LTC_0002", "timestamp": "2025-09-30T10:20:00Z",
        "customer": {"phone": "+962-7-5550-0018", "meterNumber": "LM18", "address": "18 Legacy Street, Zarqa",
                     "notes": "whole building dark"},
        "intake": {"intakeId": "LIN-0002", "omsEventId": "LOE-0002"}, "source": "call-center-intake"})
    cur.execute("SELECT * FROM sync_callcenter_tickets_to_meters()")
    ingest("insert_scada_event_with_meter_check", {
        "eventType": "MV_AlarmRestoration", "substationId": "LSS002", "feederId": "LFD003", "mainStationId": "82001",
        "alarmType": "Energized", "timestamp": "2025-09-30T11:20:00Z", "voltage": 11000, "severity": "High",
        "reason": "Protection Trip", "coordinates": {"lat": 32.07312345, "lng": 36.08876543},
        "source": "SCADA-Simulator"})
    # An ONU the registry does not know: the old function stubs it in onus.
    ingest("insert_onu_event_from_json_with_meter_sync", {
        "eventId": "LONU_EVT_0002", "type": "ONU_LinkDown", "onuId": 4100003, "onuSerial": "48575443AB100003",
        "timestamp": "2025-09-30T10:30:00Z", "nmsType": "FiberTech",
        "alarmData": {"category": "link", "alarmType": "los"}})

    correlate("onu", "LONU_EVT_0001", "2025-09-30T10:05:00Z", 31.95701234, 35.90923456)
    correlate("kaifa", "LKAIFA_EVT_0001", "2025-09-30T10:07:00Z", 31.95710987, 35.90934567)
    correlate("call_center", f"cc_{linked_ticket}", "2025-09-30T10:15:00Z", 31.95790123, 35.90876543)
    correlate("call_center", f"cc_{unlinked_ticket}", "2025-09-30T10:20:00Z", 32.07398765, 36.08912345)


def fill_what_ingestion_left_empty(cur):
    """What the operators and the operations API wrote by hand: outage details, crews,
    notifications, affected customers, a ticket's later status, a past storm; so that every table
    has two rows and every column a value."""
    cur.execute("""
        UPDATE oms_outage_events o
        SET status = 'confirmed', dp_id = dp.id, estimated_restoration_time = '2025-09-30 13:00:00+00',
            root_cause = 'Overcurrent on LFD002',
            affected_area_geojson = '{"type": "Point", "coordinates": [35.90987654, 31.95623456]}'
        FROM network_distribution_points dp
        WHERE dp.dp_id = 'LDP002' AND o.event_id LIKE 'OMS_SCADA_%';

        UPDATE oms_outage_events o
        SET status = 'restored', severity = 'low', substation_id = f.substation_id, feeder_id = f.id, dp_id = dp.id,
            affected_customers_count = 1, estimated_restoration_time = '2025-09-30 12:00:00+00',
            actual_restoration_time = '2025-09-30 11:20:00+00', root_cause = 'Blown fuse at LDP004',
            affected_area_geojson = '{"type": "Point", "coordinates": [36.08912345, 32.07398765]}'
        FROM network_distribution_points dp JOIN network_feeders f ON f.id = dp.feeder_id
        WHERE dp.dp_id = 'LDP004' AND o.event_id LIKE 'OMS_CALL_CENTER_%';

        INSERT INTO oms_event_timeline (outage_event_id, event_type, status, description, source, "timestamp", metadata)
        SELECT id, 'status_change', 'restored', 'Fuse replaced', 'operator', '2025-09-30 11:20:00+00',
               '{"by": "desk-2"}'
        FROM oms_outage_events WHERE status = 'restored';

        INSERT INTO oms_crew_assignments (outage_event_id, crew_id, crew_name, assignment_type, status, assigned_at,
                                          estimated_arrival, actual_arrival, completed_at, notes, location_lat,
                                          location_lng)
        SELECT o.id, v.crew_id, v.crew_name, v.assignment_type, v.status, o.first_detected_at + interval '5 minutes',
               o.first_detected_at + interval '40 minutes', v.arrived, v.completed, v.notes, v.lat, v.lng
        FROM oms_outage_events o
        JOIN (VALUES ('OMS_SCADA_%', 'LCREW-01', 'North line crew', 'investigation', 'en_route', NULL::timestamptz,
                      NULL::timestamptz, 'Check breaker at LSS001', 31.95501234, 35.91001234),
                     ('OMS_CALL_CENTER_%', 'LCREW-02', 'East fuse crew', 'repair', 'completed',
                      '2025-09-30 10:55:00+00', '2025-09-30 11:20:00+00', 'Fuse replaced', 32.07398765, 36.08912345))
             AS v(event_pattern, crew_id, crew_name, assignment_type, status, arrived, completed, notes, lat, lng)
          ON o.event_id LIKE v.event_pattern;

        INSERT INTO oms_outage_customers (id, outage_id, customer_id, linked_at)
        SELECT uuid_generate_v4(), s.outage_event_id, m.customer_id, sa.checked_at
        FROM scada_event_affected_meters sa
        JOIN scada_events s ON s.id = sa.scada_event_id JOIN oms_meters m ON m.id = sa.meter_id;

        INSERT INTO oms_customer_notifications (outage_event_id, customer_id, notification_type, channel, status,
                                                sent_at, delivered_at, message_content)
        SELECT oc.outage_id, oc.customer_id, 'outage_detected',
               CASE WHEN c.customer_id = 'LC001' THEN 'email' ELSE 'sms' END, 'delivered', oc.linked_at,
               oc.linked_at + interval '4 seconds',
               'Power outage in your area; estimated restoration 13:00.'
        FROM oms_outage_customers oc JOIN oms_customers c ON c.id = oc.customer_id
        WHERE c.customer_id IN ('LC001', 'LC002');

        INSERT INTO callcenter_ticket_status_history (ticket_id, status, changed_at, note)
        SELECT id, 'Dispatched', intake_timestamp + interval '10 minutes', 'crew LCREW-01 dispatched'
        FROM callcenter_tickets WHERE external_ticket_id = 'LTC_0001';
        UPDATE callcenter_tickets SET status = 'Dispatched' WHERE external_ticket_id = 'LTC_0001';

        INSERT INTO oms_storm_mode_config (is_active, correlation_window_minutes, spatial_radius_meters,
                                           confidence_threshold, auto_activation_threshold, activated_at,
                                           deactivated_at)
        VALUES (false, 90, 3000, 0.40, 50, '2025-01-12 18:00:00+00', '2025-01-13 06:30:00+00')""")


def grant_consumer_role(cur):
    """The consumers' login: the old functions ran with its rights, so it wrote the source tables
    itself and read the meters."""
    cur.execute("""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'legacy_consumer') THEN
            CREATE ROLE legacy_consumer LOGIN;
        END IF;
    END $$""")
    source_tables = [t for t in LEGACY_TABLES if t.startswith(("scada_", "onu", "kaifa_", "callcenter_"))]
    cur.execute(f"GRANT INSERT, SELECT ON {', '.join(source_tables)} TO legacy_consumer")
    cur.execute("GRANT USAGE ON SEQUENCE onu_events_id_seq, meters_id_seq TO legacy_consumer")
    cur.execute("GRANT SELECT ON oms_meters, network_feeders TO legacy_consumer")


# --- Comparing ------------------------------------------------------------------------------------

def table_fingerprints(cur):
    """{table: (row count, md5 of its rows' text, sorted)} over the legacy columns only, so that a
    table compares equal before and after a tool adds columns of its own. Timestamps print in the
    session's TimeZone: compare fingerprints taken with the same one."""
    fingerprints = {}
    for table in LEGACY_TABLES:
        columns = ", ".join(quote_ident(c, cur) for c in SCHEMA.tables[table].columns)
        cur.execute(f"""SELECT count(*), md5(coalesce(string_agg(row_text, E'\\n' ORDER BY row_text COLLATE "C"), ''))
                        FROM (SELECT ROW({columns})::text AS row_text FROM {table}) AS t""")
        fingerprints[table] = cur.fetchone()
    return fingerprints


if __name__ == "__main__":
    # python3 tests/integration/legacy_fixture.py "host=127.0.0.1 port=25430 user=postgres dbname=legacy"
    import sys

    import psycopg2

    connection = psycopg2.connect(sys.argv[1])
    connection.autocommit = True
    with connection.cursor() as cursor:
        build(cursor)
    connection.close()
