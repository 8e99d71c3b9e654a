-- Helper functions DBAs' scripts already call, with their exact signatures (SPEC §2).

CREATE FUNCTION @extschema@.get_meters_by_substation(p_substation_id varchar)
RETURNS TABLE(meter_id uuid, meter_number varchar, communication_status varchar, power_status varchar,
              last_communication timestamptz, customer_id uuid, location_lat numeric, location_lng numeric)
LANGUAGE sql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT m.id, m.meter_number, m.communication_status, m.power_status, m.last_communication,
           m.customer_id, m.location_lat, m.location_lng
    FROM network_substations s
    CROSS JOIN LATERAL oms_meter_scope(s.id, NULL) AS scope(meter_id)
    JOIN oms_meters m ON m.id = scope.meter_id
    WHERE s.substation_id = p_substation_id AND m.status = 'active'
    ORDER BY m.meter_number
$$;

CREATE FUNCTION @extschema@.get_meters_by_feeder(p_feeder_id varchar)
RETURNS TABLE(meter_id uuid, meter_number varchar, communication_status varchar, power_status varchar,
              last_communication timestamptz, customer_id uuid, location_lat numeric, location_lng numeric)
LANGUAGE sql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT m.id, m.meter_number, m.communication_status, m.power_status, m.last_communication,
           m.customer_id, m.location_lat, m.location_lng
    FROM network_feeders f
    CROSS JOIN LATERAL oms_meter_scope(f.substation_id, f.id) AS scope(meter_id)
    JOIN oms_meters m ON m.id = scope.meter_id
    WHERE f.feeder_id = p_feeder_id AND m.status = 'active'
    ORDER BY m.meter_number
$$;

CREATE FUNCTION @extschema@.update_meter_status(
    p_meter_number varchar, p_new_status varchar, p_event_type varchar, p_source_type varchar,
    p_source_event_id varchar DEFAULT NULL, p_event_timestamp timestamptz DEFAULT now(),
    p_metadata jsonb DEFAULT NULL)
RETURNS uuid
LANGUAGE sql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT oms_update_meter_status(p_meter_number, p_new_status, p_event_type, p_source_type,
                                   p_source_event_id, p_event_timestamp, p_metadata)
$$;

CREATE FUNCTION @extschema@.process_scada_event_meters(
    p_scada_event_id uuid, p_substation_id varchar, p_feeder_id varchar DEFAULT NULL,
    p_event_timestamp timestamptz DEFAULT now())
RETURNS TABLE(total_meters int, offline_meters int, online_meters int, unknown_meters int, outage_event_id uuid)
LANGUAGE sql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT * FROM oms_process_scada_event_meters(p_scada_event_id, p_substation_id, p_feeder_id, p_event_timestamp)
$$;

-- Links tickets stored before their meter was registered. Set-based: one UPDATE for all tickets.
CREATE FUNCTION @extschema@.sync_callcenter_tickets_to_meters()
RETURNS TABLE(tickets_processed int, meters_linked int, meters_not_found int)
LANGUAGE sql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    WITH pending AS (
        SELECT c.id, c.meter_number FROM callcenter_customers c
        WHERE c.meter_id IS NULL AND c.meter_number IS NOT NULL AND c.meter_number <> ''
    ), linked AS (
        UPDATE callcenter_customers c SET meter_id = m.id
        FROM pending p JOIN oms_meters m ON m.meter_number = p.meter_number
        WHERE c.id = p.id
        RETURNING c.id
    )
    SELECT (SELECT count(*) FROM pending)::int,
           (SELECT count(*) FROM linked)::int,
           ((SELECT count(*) FROM pending) - (SELECT count(*) FROM linked))::int
$$;
