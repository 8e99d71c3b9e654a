-- The least any outage engine writes for a meter signal, on top of what the PL/pgSQL reference writes
-- (schema `floor`, under the pgbench scripts' function names, for bench/run.py).
--
-- A power-off opens its meters' service outage (or finds it open) and records the meters, their
-- customers, the source, a timeline row and a notification; a power-on ends the meters' memberships
-- and restores the outage they were out in, with a timeline row (the status trigger notifies).
-- Nothing else: no device locks, no search for a covering outage, no roll-up check, no storm count,
-- no late-signal handling, no confidence arithmetic. It is a floor under the engine's cost per
-- event, not an engine: the floor's ratio to the reference says how much of issue 11's per-event gap
-- to 0.2.0 comes from writing outage records inside the ingest call at all; the engine's ratio to
-- the floor, how much is the engine's own work.

DROP SCHEMA IF EXISTS floor CASCADE;
CREATE SCHEMA floor;

CREATE FUNCTION floor.outage_writes(p_meters uuid[], p_power_off boolean, p_source text, p_event text,
                                    p_table text, p_at timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_outage uuid;
BEGIN
    IF p_power_off THEN
        -- The service: the first meter's building (its ONU), else the meter, as the engine keys it.
        INSERT INTO public.oms_outage_events
            (id, event_id, event_type, status, severity, confidence_score, affected_customers_count, customers_out,
             description, dp_id, feeder_id, substation_id, first_detected_at, scope, device_key)
        SELECT gen_random_uuid(), 'FLOOR_' || p_event, 'outage', 'detected', 'medium', 0.85,
               cardinality(p_meters), cardinality(p_meters), 'floor', m.dp_id, m.feeder_id, m.substation_id, p_at,
               'service', coalesce('service:onu:' || m.onu_id, 'service:meter:' || m.id)
        FROM public.oms_meters m WHERE m.id = p_meters[1]
        ON CONFLICT (device_key) WHERE status IN ('detected', 'confirmed', 'in_progress')
        DO UPDATE SET last_updated_at = now()
        RETURNING id INTO v_outage;
        IF v_outage IS NULL THEN
            RETURN;
        END IF;
        INSERT INTO public.oms_outage_meters
            (outage_id, meter_id, off_at, customer_key, customer_id, dp_id, feeder_id, substation_id, first_source,
             first_source_event_id)
        SELECT v_outage, m.id, p_at, coalesce(m.customer_id, m.id), m.customer_id, m.dp_id, m.feeder_id,
               m.substation_id, p_source, p_event
        FROM public.oms_meters m WHERE m.id = ANY (p_meters)
        ON CONFLICT DO NOTHING;
        INSERT INTO public.oms_outage_customers (outage_id, customer_id, linked_at)
        SELECT v_outage, m.customer_id, p_at FROM public.oms_meters m
        WHERE m.id = ANY (p_meters) AND m.customer_id IS NOT NULL
        ON CONFLICT DO NOTHING;
        INSERT INTO public.oms_event_sources
            (outage_event_id, source_type, source_event_id, source_table, correlation_weight, detected_at,
             event_timestamp, confidence_weight)
        VALUES (v_outage, p_source, p_event, p_table, 0.85, p_at, p_at, 0.85)
        ON CONFLICT DO NOTHING;
        INSERT INTO public.oms_event_timeline
            (outage_event_id, event_type, status, description, source, "timestamp", event_description,
             event_timestamp, created_by)
        VALUES (v_outage, 'source_joined', 'detected', 'floor', p_source, p_at, 'floor', p_at, 'floor');
        PERFORM pg_notify('oms_outage', json_build_object('outage_event_id', v_outage, 'change', 'joined')::text);
    ELSE
        WITH ended AS (
            UPDATE public.oms_outage_meters om SET on_at = p_at
            WHERE om.meter_id = ANY (p_meters) AND om.on_at IS NULL AND om.off_at <= p_at
            RETURNING om.outage_id)
        SELECT outage_id INTO v_outage FROM ended LIMIT 1;
        IF v_outage IS NOT NULL THEN
            UPDATE public.oms_outage_events SET status = 'restored', actual_restoration_time = p_at, customers_out = 0
            WHERE id = v_outage AND status IN ('detected', 'confirmed', 'in_progress');
            INSERT INTO public.oms_event_timeline
                (outage_event_id, event_type, status, description, source, "timestamp", event_description,
                 event_timestamp, created_by)
            VALUES (v_outage, 'outage_restored', 'restored', 'floor', p_source, p_at, 'floor', p_at, 'floor');
        END IF;
    END IF;
END
$$;

CREATE FUNCTION floor.insert_onu_event_from_json_with_meter_sync(json_data jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_id integer := reference.insert_onu_event_from_json_with_meter_sync(json_data);
    v_meters uuid[] := ARRAY(SELECT id FROM public.oms_meters WHERE onu_id = (json_data->>'onuId')::integer
                             AND status = 'active' ORDER BY id);
BEGIN
    IF cardinality(v_meters) > 0 AND json_data->>'type' IN ('ONU_LastGaspAlert', 'ONU_PowerRestored') THEN
        PERFORM floor.outage_writes(v_meters, json_data->>'type' = 'ONU_LastGaspAlert', 'onu', json_data->>'eventId',
                                    'onu_events', (json_data->>'timestamp')::timestamptz);
    END IF;
    RETURN v_id;
END
$$;

-- A customer's call is a power-off of the meter it names.
CREATE FUNCTION floor.insert_callcenter_ticket_from_json_with_meter_link(json_data jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid := reference.insert_callcenter_ticket_from_json_with_meter_link(json_data);
    v_meters uuid[] := ARRAY(SELECT id FROM public.oms_meters WHERE meter_number = json_data->'customer'->>'meterNumber');
BEGIN
    IF cardinality(v_meters) > 0 THEN
        PERFORM floor.outage_writes(v_meters, true, 'call_center', json_data->>'ticketId', 'callcenter_tickets',
                                    (json_data->>'timestamp')::timestamptz);
    END IF;
    RETURN v_id;
END
$$;

-- A last gasp (CIM 3.26.0.85) is a power-off, a restoration (3.26.0.216) a power-on, as in the
-- reference.
CREATE FUNCTION floor.insert_kaifa_event_from_json_with_meter_sync(json_data jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid := reference.insert_kaifa_event_from_json_with_meter_sync(json_data);
    v_code text := json_data->'payload'->'event_type'->>'@ref';
    v_meters uuid[] := ARRAY(SELECT id FROM public.oms_meters WHERE asset_mrid = json_data->'payload'->'assets'->>'ns2:mRID');
BEGIN
    IF cardinality(v_meters) > 0 AND v_code IN ('3.26.0.85', '3.26.0.216') THEN
        PERFORM floor.outage_writes(v_meters, v_code = '3.26.0.85', 'kaifa', json_data->'header'->>'message_id',
                                    'kaifa_events', (json_data->'payload'->>'created_date_time')::timestamptz);
    END IF;
    RETURN v_id;
END
$$;
