-- The least any outage engine writes for an ONU signal, on top of what the PL/pgSQL reference writes
-- to the registry (schema `floor`, the pgbench script's function name, for bench/run.py).
--
-- A last gasp opens the building's service outage (or finds it open) and records its meters, its
-- customers, the source, a timeline row and a notification; a restoration ends the meters'
-- memberships and restores the outage they were out in, with a timeline row (the status trigger
-- notifies). Nothing else: no device locks, no search for a covering outage, no roll-up check, no
-- storm count, no late-signal handling, no confidence. It is a floor under the engine's cost per
-- event, not an engine: the engine's ratio to it says how much of the gap to 0.2.0 is the writes
-- correlation needs at all (issue 11's per-event targets), and how much is the engine's own work.

DROP SCHEMA IF EXISTS floor CASCADE;
CREATE SCHEMA floor;

CREATE FUNCTION floor.insert_onu_event_from_json_with_meter_sync(json_data jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_id integer := reference.insert_onu_event_from_json_with_meter_sync(json_data);
    v_onu integer := (json_data->>'onuId')::integer;
    v_event text := json_data->>'eventId';
    v_at timestamptz := (json_data->>'timestamp')::timestamptz;
    v_outage uuid;
BEGIN
    IF json_data->>'type' = 'ONU_LastGaspAlert' THEN
        INSERT INTO public.oms_outage_events
            (id, event_id, event_type, status, severity, confidence_score, affected_customers_count, customers_out,
             description, dp_id, feeder_id, substation_id, first_detected_at, scope, device_key)
        SELECT gen_random_uuid(), 'FLOOR_' || v_event, 'outage', 'detected', 'medium', 0.85, count(*), count(*),
               'floor', (array_agg(m.dp_id))[1], (array_agg(m.feeder_id))[1], (array_agg(m.substation_id))[1],
               v_at, 'service', 'service:onu:' || v_onu
        FROM public.oms_meters m WHERE m.onu_id = v_onu
        HAVING count(*) > 0
        ON CONFLICT (device_key) WHERE status IN ('detected', 'confirmed', 'in_progress')
        DO UPDATE SET last_updated_at = now()
        RETURNING id INTO v_outage;
        IF v_outage IS NULL THEN
            RETURN v_id;
        END IF;
        INSERT INTO public.oms_outage_meters
            (outage_id, meter_id, off_at, customer_key, customer_id, dp_id, feeder_id, substation_id, first_source,
             first_source_event_id)
        SELECT v_outage, m.id, v_at, coalesce(m.customer_id, m.id), m.customer_id, m.dp_id, m.feeder_id,
               m.substation_id, 'onu', v_event
        FROM public.oms_meters m WHERE m.onu_id = v_onu
        ON CONFLICT DO NOTHING;
        INSERT INTO public.oms_outage_customers (outage_id, customer_id, linked_at)
        SELECT v_outage, m.customer_id, v_at FROM public.oms_meters m
        WHERE m.onu_id = v_onu AND m.customer_id IS NOT NULL
        ON CONFLICT DO NOTHING;
        INSERT INTO public.oms_event_sources
            (outage_event_id, source_type, source_event_id, source_table, correlation_weight, detected_at,
             event_timestamp, confidence_weight)
        VALUES (v_outage, 'onu', v_event, 'onu_events', 0.85, v_at, v_at, 0.85)
        ON CONFLICT DO NOTHING;
        INSERT INTO public.oms_event_timeline
            (outage_event_id, event_type, status, description, source, "timestamp", event_description,
             event_timestamp, created_by)
        VALUES (v_outage, 'source_joined', 'detected', 'floor', 'onu', v_at, 'floor', v_at, 'floor');
        PERFORM pg_notify('oms_outage', json_build_object('outage_event_id', v_outage, 'change', 'joined')::text);
    ELSIF json_data->>'type' = 'ONU_PowerRestored' THEN
        WITH ended AS (
            UPDATE public.oms_outage_meters om SET on_at = v_at
            WHERE om.meter_id IN (SELECT m.id FROM public.oms_meters m WHERE m.onu_id = v_onu)
              AND om.on_at IS NULL AND om.off_at <= v_at
            RETURNING om.outage_id)
        SELECT outage_id INTO v_outage FROM ended LIMIT 1;
        IF v_outage IS NOT NULL THEN
            UPDATE public.oms_outage_events SET status = 'restored', actual_restoration_time = v_at, customers_out = 0
            WHERE id = v_outage AND status IN ('detected', 'confirmed', 'in_progress');
            INSERT INTO public.oms_event_timeline
                (outage_event_id, event_type, status, description, source, "timestamp", event_description,
                 event_timestamp, created_by)
            VALUES (v_outage, 'outage_restored', 'restored', 'floor', 'onu', v_at, 'floor', v_at, 'floor');
        END IF;
    END IF;
    RETURN v_id;
END
$$;
