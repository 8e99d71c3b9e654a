-- Views for operators and dashboards (SPEC §2).

-- Each view has the legacy view's columns first, under the legacy names and meanings
-- (../shared/LEGACY_SCHEMA.md): dashboards written for the legacy database read them unchanged.
-- The extension's own columns follow.

-- Legacy: substation_id, feeder_id, dp_id and customer_id are the devices' and customer's codes.
CREATE VIEW @extschema@.oms_meters_with_topology AS
SELECT m.id AS meter_id, m.meter_number, m.meter_type, m.communication_status, m.power_status,
       m.last_communication, m.last_power_change, m.location_lat, m.location_lng,
       c.customer_id, c.phone AS customer_phone, c.address AS customer_address,
       s.substation_id, s.name AS substation_name, f.feeder_id, f.name AS feeder_name,
       dp.dp_id, dp.name AS dp_name,
       m.id, m.status, m.building_id, m.last_status_change, m.last_event_at, m.asset_mrid,
       m.usage_point_mrid, m.onu_id, m.onu_serial_no, m.created_at, m.updated_at,
       s.substation_id AS substation_code, f.feeder_id AS feeder_code, dp.dp_id AS dp_code,
       c.customer_id AS customer_code, c.customer_name,
       s.id AS substation_uuid, f.id AS feeder_uuid, dp.id AS dp_uuid, c.id AS customer_uuid
FROM @extschema@.oms_meters m
LEFT JOIN @extschema@.network_feeders f ON f.id = m.feeder_id
LEFT JOIN @extschema@.network_substations s ON s.id = COALESCE(m.substation_id, f.substation_id)
LEFT JOIN @extschema@.network_distribution_points dp ON dp.id = m.dp_id
LEFT JOIN @extschema@.oms_customers c ON c.id = m.customer_id;

-- Legacy: online / offline / unknown count power status (on, off, unknown or not known), and
-- comm_offline_meters communication. Active meters of the device, each once (oms_meter_scope).
CREATE VIEW @extschema@.network_substations_with_meters AS
SELECT s.id, s.substation_id, s.name, s.location_lat, s.location_lng, s.status,
       counts.total_meters, counts.online_meters, counts.offline_meters, counts.unknown_meters,
       counts.comm_offline_meters, counts.comm_online_meters,
       s.region_code, s.voltage_level, s.created_at, s.updated_at,
       (SELECT count(*) FROM @extschema@.oms_outage_events o
         WHERE o.substation_id = s.id AND o.status IN ('detected', 'confirmed', 'in_progress')) AS open_outages
FROM @extschema@.network_substations s
CROSS JOIN LATERAL (
    SELECT count(*) AS total_meters,
           count(*) FILTER (WHERE m.power_status = 'on') AS online_meters,
           count(*) FILTER (WHERE m.power_status = 'off') AS offline_meters,
           count(*) FILTER (WHERE m.power_status IS DISTINCT FROM 'on' AND m.power_status IS DISTINCT FROM 'off')
               AS unknown_meters,
           count(*) FILTER (WHERE m.communication_status = 'offline') AS comm_offline_meters,
           count(*) FILTER (WHERE m.communication_status = 'online') AS comm_online_meters
    FROM @extschema@.oms_meter_scope(s.id, NULL) AS scope(meter_id)
    JOIN @extschema@.oms_meters m ON m.id = scope.meter_id AND m.status = 'active'
) AS counts;

CREATE VIEW @extschema@.network_feeders_with_meters AS
SELECT f.id, f.feeder_id, f.name, f.substation_id, s.substation_id AS substation_code,
       s.name AS substation_name, f.location_lat, f.location_lng, f.status,
       counts.total_meters, counts.online_meters, counts.offline_meters, counts.unknown_meters,
       counts.comm_offline_meters, counts.comm_online_meters,
       f.voltage_level, f.capacity_kva, f.created_at, f.updated_at,
       (SELECT count(*) FROM @extschema@.oms_outage_events o
         WHERE o.feeder_id = f.id AND o.status IN ('detected', 'confirmed', 'in_progress')) AS open_outages
FROM @extschema@.network_feeders f
LEFT JOIN @extschema@.network_substations s ON s.id = f.substation_id
CROSS JOIN LATERAL (
    SELECT count(*) AS total_meters,
           count(*) FILTER (WHERE m.power_status = 'on') AS online_meters,
           count(*) FILTER (WHERE m.power_status = 'off') AS offline_meters,
           count(*) FILTER (WHERE m.power_status IS DISTINCT FROM 'on' AND m.power_status IS DISTINCT FROM 'off')
               AS unknown_meters,
           count(*) FILTER (WHERE m.communication_status = 'offline') AS comm_offline_meters,
           count(*) FILTER (WHERE m.communication_status = 'online') AS comm_online_meters
    FROM @extschema@.oms_meter_scope(f.substation_id, f.id) AS scope(meter_id)
    JOIN @extschema@.oms_meters m ON m.id = scope.meter_id AND m.status = 'active'
) AS counts;

-- Open outages with their devices' names and their sources (legacy: source_types as text).
CREATE VIEW @extschema@.oms_active_outages AS
SELECT o.id, o.event_id, o.event_type, o.status, o.severity, o.confidence_score, o.affected_customers_count,
       o.first_detected_at, o.estimated_restoration_time,
       s.name AS substation_name, f.name AS feeder_name, dp.name AS dp_name,
       (SELECT count(*) FROM @extschema@.oms_event_sources es WHERE es.outage_event_id = o.id) AS source_count,
       (SELECT string_agg(DISTINCT es.source_type, ', ' ORDER BY es.source_type)
          FROM @extschema@.oms_event_sources es WHERE es.outage_event_id = o.id)::text AS source_types,
       o.scope, o.device_key, o.substation_id, o.feeder_id, o.dp_id, o.description, o.root_cause,
       o.event_latitude, o.event_longitude, o.last_updated_at,
       s.substation_id AS substation_code, f.feeder_id AS feeder_code, dp.dp_id AS dp_code,
       now() - o.first_detected_at AS duration
FROM @extschema@.oms_outage_events o
LEFT JOIN @extschema@.network_substations s ON s.id = o.substation_id
LEFT JOIN @extschema@.network_feeders f ON f.id = o.feeder_id
LEFT JOIN @extschema@.network_distribution_points dp ON dp.id = o.dp_id
WHERE o.status IN ('detected', 'confirmed', 'in_progress');

-- Legacy: one row per outage, with its sources counted by type.
CREATE VIEW @extschema@.oms_correlation_summary AS
SELECT o.id AS outage_event_id, o.event_id, o.status, o.confidence_score,
       count(es.id) AS total_sources,
       count(es.id) FILTER (WHERE es.source_type = 'scada') AS scada_sources,
       count(es.id) FILTER (WHERE es.source_type = 'kaifa') AS kaifa_sources,
       count(es.id) FILTER (WHERE es.source_type = 'onu') AS onu_sources,
       count(es.id) FILTER (WHERE es.source_type = 'call_center') AS call_center_sources,
       min(es.detected_at) AS first_source_detected,
       max(es.detected_at) AS last_source_detected
FROM @extschema@.oms_outage_events o
LEFT JOIN @extschema@.oms_event_sources es ON es.outage_event_id = o.id
-- A merged outage is part of its survivor (SPEC §5.3): listed, it would be counted twice.
WHERE o.status <> 'merged'
GROUP BY o.id;

-- One row per source: what each field system has told the registry, and the weight its signals
-- carry (oms_source_weight()).
CREATE VIEW @extschema@.oms_source_summary AS
SELECT s.source_type,
       @extschema@.oms_source_weight(s.source_type) AS correlation_weight,
       coalesce(e.status_events, 0) AS status_events,
       coalesce(e.applied_events, 0) AS applied_events,
       coalesce(e.meters, 0) AS meters,
       e.last_event_at,
       e.avg_confidence,
       coalesce(o.outages, 0) AS outages_contributed
FROM (VALUES ('scada'), ('onu'), ('kaifa'), ('call_center')) AS s(source_type)
LEFT JOIN (
    SELECT source_type, count(*) AS status_events, count(*) FILTER (WHERE applied) AS applied_events,
           count(DISTINCT meter_id) AS meters, max(event_timestamp) AS last_event_at,
           round(avg(confidence_score), 2) AS avg_confidence
    FROM @extschema@.oms_meter_status_events GROUP BY source_type
) e ON e.source_type = s.source_type
LEFT JOIN (
    SELECT source_type, count(DISTINCT outage_event_id) AS outages
    FROM @extschema@.oms_event_sources GROUP BY source_type
) o ON o.source_type = s.source_type;

-- Events that named a meter, ONU or device the registry does not know (SPEC §6): stored, never an
-- error, and listed here for the people who maintain the registry.
CREATE VIEW @extschema@.oms_unmatched_events AS
SELECT 'onu'::text AS source, e.event_id::text AS source_event_id, 'ONU ' || e.onu_id AS named,
       e."timestamp" AS event_time, 'no active meter is registered behind this ONU'::text AS reason
FROM @extschema@.onu_events e
WHERE e.meter_id IS NULL AND e.event_type IN ('ONU_LastGaspAlert', 'ONU_PowerRestored')
UNION ALL
SELECT 'kaifa', coalesce(k.delivery_key, p.event_id_value)::text, 'asset ' || a.mrid, k.event_timestamp,
       'no meter has this asset mRID or number'
FROM @extschema@.kaifa_event_assets a
JOIN @extschema@.kaifa_event_payloads p ON p.id = a.payload_id
JOIN @extschema@.kaifa_events k ON k.id = p.event_id
WHERE a.meter_id IS NULL AND a.mrid IS NOT NULL
UNION ALL
SELECT 'kaifa', coalesce(k.delivery_key, p.event_id_value)::text, 'usage point ' || u.mrid, k.event_timestamp,
       'no meter has this usage-point mRID'
FROM @extschema@.kaifa_event_usage_points u
JOIN @extschema@.kaifa_event_payloads p ON p.id = u.payload_id
JOIN @extschema@.kaifa_events k ON k.id = p.event_id
WHERE u.meter_id IS NULL AND u.mrid IS NOT NULL
UNION ALL
SELECT 'call_center', t.external_ticket_id::text, 'meter ' || c.meter_number, t.intake_timestamp,
       'no meter has this number'
FROM @extschema@.callcenter_customers c JOIN @extschema@.callcenter_tickets t ON t.id = c.ticket_id
WHERE c.meter_id IS NULL AND c.meter_number IS NOT NULL
UNION ALL
SELECT 'scada', e.id::text, 'substation ' || e.substation_id || coalesce(', feeder ' || e.feeder_id, ''),
       e.event_timestamp, e.check_result ->> 'reason'
FROM @extschema@.scada_events e
WHERE e.check_result ->> 'reason' LIKE 'unknown substation%';
