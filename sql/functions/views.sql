-- Views for operators and dashboards (SPEC §2).

CREATE VIEW @extschema@.oms_meters_with_topology AS
SELECT m.*,
       s.substation_id AS substation_code, s.name AS substation_name,
       f.feeder_id AS feeder_code, f.name AS feeder_name,
       dp.dp_id AS dp_code, dp.name AS dp_name,
       c.customer_id AS customer_code, c.phone AS customer_phone, c.address AS customer_address
FROM @extschema@.oms_meters m
LEFT JOIN @extschema@.network_feeders f ON f.id = m.feeder_id
LEFT JOIN @extschema@.network_substations s ON s.id = COALESCE(m.substation_id, f.substation_id)
LEFT JOIN @extschema@.network_distribution_points dp ON dp.id = m.dp_id
LEFT JOIN @extschema@.oms_customers c ON c.id = m.customer_id;

CREATE VIEW @extschema@.network_substations_with_meters AS
SELECT s.*, counts.*,
       (SELECT count(*) FROM @extschema@.oms_outage_events o
         WHERE o.substation_id = s.id AND o.status IN ('detected', 'confirmed', 'in_progress')) AS open_outages
FROM @extschema@.network_substations s
CROSS JOIN LATERAL (
    SELECT count(*) AS total_meters,
           count(*) FILTER (WHERE m.communication_status = 'online') AS online_meters,
           count(*) FILTER (WHERE m.communication_status = 'offline') AS offline_meters,
           count(*) FILTER (WHERE m.power_status = 'on') AS powered_meters,
           count(*) FILTER (WHERE m.power_status = 'off') AS unpowered_meters,
           count(*) FILTER (WHERE m.power_status = 'unknown') AS power_unknown_meters
    FROM @extschema@.oms_meter_scope(s.id, NULL) AS scope(meter_id)
    JOIN @extschema@.oms_meters m ON m.id = scope.meter_id AND m.status = 'active'
) AS counts;

CREATE VIEW @extschema@.network_feeders_with_meters AS
SELECT f.*, s.substation_id AS substation_code, counts.*,
       (SELECT count(*) FROM @extschema@.oms_outage_events o
         WHERE o.feeder_id = f.id AND o.status IN ('detected', 'confirmed', 'in_progress')) AS open_outages
FROM @extschema@.network_feeders f
LEFT JOIN @extschema@.network_substations s ON s.id = f.substation_id
CROSS JOIN LATERAL (
    SELECT count(*) AS total_meters,
           count(*) FILTER (WHERE m.communication_status = 'online') AS online_meters,
           count(*) FILTER (WHERE m.communication_status = 'offline') AS offline_meters,
           count(*) FILTER (WHERE m.power_status = 'on') AS powered_meters,
           count(*) FILTER (WHERE m.power_status = 'off') AS unpowered_meters,
           count(*) FILTER (WHERE m.power_status = 'unknown') AS power_unknown_meters
    FROM @extschema@.oms_meter_scope(f.substation_id, f.id) AS scope(meter_id)
    JOIN @extschema@.oms_meters m ON m.id = scope.meter_id AND m.status = 'active'
) AS counts;

CREATE VIEW @extschema@.oms_active_outages AS
SELECT o.*,
       s.substation_id AS substation_code, f.feeder_id AS feeder_code, dp.dp_id AS dp_code,
       (SELECT count(*) FROM @extschema@.oms_event_sources es WHERE es.outage_event_id = o.id) AS source_count,
       (SELECT array_agg(DISTINCT es.source_type ORDER BY es.source_type)
          FROM @extschema@.oms_event_sources es WHERE es.outage_event_id = o.id) AS source_types,
       now() - o.first_detected_at AS duration
FROM @extschema@.oms_outage_events o
LEFT JOIN @extschema@.network_substations s ON s.id = o.substation_id
LEFT JOIN @extschema@.network_feeders f ON f.id = o.feeder_id
LEFT JOIN @extschema@.network_distribution_points dp ON dp.id = o.dp_id
WHERE o.status IN ('detected', 'confirmed', 'in_progress');

-- One row per source: what each field system has told the registry.
CREATE VIEW @extschema@.oms_correlation_summary AS
SELECT r.source_type,
       r.correlation_weight,
       coalesce(e.status_events, 0) AS status_events,
       coalesce(e.applied_events, 0) AS applied_events,
       coalesce(e.meters, 0) AS meters,
       e.last_event_at,
       e.avg_confidence,
       coalesce(o.outages, 0) AS outages_contributed
FROM @extschema@.oms_correlation_rules r
LEFT JOIN (
    SELECT source_type, count(*) AS status_events, count(*) FILTER (WHERE applied) AS applied_events,
           count(DISTINCT meter_id) AS meters, max(event_timestamp) AS last_event_at,
           round(avg(confidence_score), 2) AS avg_confidence
    FROM @extschema@.oms_meter_status_events GROUP BY source_type
) e ON e.source_type = r.source_type
LEFT JOIN (
    SELECT source_type, count(DISTINCT outage_event_id) AS outages
    FROM @extschema@.oms_event_sources GROUP BY source_type
) o ON o.source_type = r.source_type;

-- Events that named a meter, ONU or device the registry does not know (SPEC §6): stored, never an
-- error, and listed here for the people who maintain the registry.
CREATE VIEW @extschema@.oms_unmatched_events AS
SELECT 'onu'::text AS source, e.event_id::text AS source_event_id, 'ONU ' || e.onu_id AS named,
       e."timestamp" AS event_time, 'no active meter is registered behind this ONU'::text AS reason
FROM @extschema@.onu_events e
WHERE e.meter_id IS NULL AND e.event_type IN ('ONU_LastGaspAlert', 'ONU_PowerRestored')
UNION ALL
SELECT 'kaifa', k.delivery_key::text, 'asset ' || a.mrid, k.event_timestamp, 'no meter has this asset mRID or number'
FROM @extschema@.kaifa_event_assets a JOIN @extschema@.kaifa_events k ON k.id = a.event_id
WHERE a.meter_id IS NULL AND a.mrid IS NOT NULL
UNION ALL
SELECT 'kaifa', k.delivery_key::text, 'usage point ' || u.mrid, k.event_timestamp, 'no meter has this usage-point mRID'
FROM @extschema@.kaifa_event_usage_points u JOIN @extschema@.kaifa_events k ON k.id = u.event_id
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
