-- The floor under a correlator batch (issue 21): the rows a batch must write, written by bare
-- set-based statements with no correlation at all (schema `floor`, for bench/run.py).
--
-- bench/run.py drains a real batch inside a transaction, reads how many rows it inserted, updated
-- and deleted in each table (pg_stat_xact_user_tables), rolls back, and calls this with those
-- counts on the same state, rolled back too: take the queue rows, log the inputs, open and update
-- outages, insert and end memberships, insert sources and timeline rows, count the batch. No
-- loading, no deciding, no announcing: what is left of a batch's time is the engine's own.

CREATE SCHEMA IF NOT EXISTS floor;

CREATE OR REPLACE FUNCTION floor.correlator_batch(
    p_queue_deleted int, p_inputs int, p_outages_inserted int, p_outages_updated int, p_spans_inserted int,
    p_spans_updated int, p_sources int, p_timeline int, p_customers int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_outages uuid[];
BEGIN
    DELETE FROM public.oms_correlation_queue q
    WHERE q.id IN (SELECT id FROM public.oms_correlation_queue ORDER BY id LIMIT p_queue_deleted);

    INSERT INTO public.oms_correlation_inputs (area, at, kind, source_type, source_event_id, meters, enqueued_at, batch)
    SELECT 'floor:' || g, clock_timestamp(), 'off', 'onu', 'FLOOR-' || g,
           ARRAY[gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), gen_random_uuid()], now(), 0
    FROM generate_series(1, p_inputs) AS g;

    WITH opened AS (
        INSERT INTO public.oms_outage_events (id, event_id, status, confidence_score, affected_customers_count,
                                             customers_out, first_detected_at, scope, device_key, opened_at)
        SELECT gen_random_uuid(), 'FLOOR-' || gen_random_uuid(), 'detected', 0.6, 4, 4, now(), 'service',
               'floor:' || gen_random_uuid(), now()
        FROM generate_series(1, p_outages_inserted)
        RETURNING id
    )
    SELECT array_agg(id) INTO v_outages FROM opened;
    UPDATE public.oms_outage_events o SET affected_customers_count = o.affected_customers_count + 1,
                                          customers_out = o.customers_out + 1, last_updated_at = now()
    WHERE o.id IN (SELECT id FROM public.oms_outage_events WHERE status IN ('detected', 'confirmed')
                   ORDER BY id LIMIT p_outages_updated);
    IF v_outages IS NULL THEN
        SELECT array_agg(id) INTO v_outages
        FROM (SELECT id FROM public.oms_outage_events WHERE status IN ('detected', 'confirmed') LIMIT 64) AS o;
    END IF;
    IF v_outages IS NULL THEN
        RETURN;
    END IF;

    INSERT INTO public.oms_outage_meters (outage_id, meter_id, off_at, customer_key, customer_id, dp_id, feeder_id,
                                          substation_id, first_source, first_source_event_id, origin_outage_id)
    SELECT v_outages[1 + m.n % cardinality(v_outages)], m.id, clock_timestamp(), coalesce(m.customer_id, m.id),
           m.customer_id, m.dp_id, m.feeder_id, m.substation_id, 'onu', 'FLOOR-' || m.n,
           v_outages[1 + m.n % cardinality(v_outages)]
    FROM (SELECT id, customer_id, dp_id, feeder_id, substation_id, row_number() OVER () AS n
          FROM public.oms_meters LIMIT p_spans_inserted) AS m;
    UPDATE public.oms_outage_meters om SET on_at = clock_timestamp()
    WHERE om.ctid = ANY (ARRAY(SELECT ctid FROM public.oms_outage_meters WHERE on_at IS NULL LIMIT p_spans_updated));

    INSERT INTO public.oms_event_sources (outage_event_id, source_type, source_event_id, source_table,
                                          correlation_weight, detected_at, event_timestamp, confidence_weight,
                                          event_data, origin_outage_id)
    SELECT v_outages[1 + g % cardinality(v_outages)], 'onu', 'FLOOR-S-' || g, 'onu_events', 0.6, now(), now(), 0.6,
           jsonb_build_object('meters', 4), v_outages[1 + g % cardinality(v_outages)]
    FROM generate_series(1, p_sources) AS g;
    INSERT INTO public.oms_event_timeline (outage_event_id, event_type, status, description, source, "timestamp",
                                           metadata, event_description, event_timestamp, created_by)
    SELECT v_outages[1 + g % cardinality(v_outages)], 'source_joined', 'confirmed', 'ONU event: 4 meter(s) off',
           'onu', now(), jsonb_build_object('meters', 4), 'ONU event: 4 meter(s) off', now(), 'oms_correlation'
    FROM generate_series(1, p_timeline) AS g;
    INSERT INTO public.oms_outage_customers (outage_id, customer_id)
    SELECT v_outages[1 + c.n % cardinality(v_outages)], c.id
    FROM (SELECT id, row_number() OVER () AS n FROM public.oms_customers LIMIT p_customers) AS c
    ON CONFLICT DO NOTHING;

    UPDATE public.oms_correlation_state SET batches = batches + 1, signals = signals + p_queue_deleted WHERE id = 1;
END
$$;

-- The floor under a SCADA trip of a whole feeder (SPEC §4.1, §5.1): the rows it must write, by
-- bare statements: the alarm, each meter's registry update, its audit row and its affected-meter
-- row, the outage, each meter's membership and each customer's row. No scope, no verdicts, no
-- locks, no correlation. bench/run.py times it on a stale feeder in a transaction it rolls back.
CREATE OR REPLACE FUNCTION floor.scada_trip(p_feeder text, p_at timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_alarm uuid := gen_random_uuid();
    v_outage uuid := gen_random_uuid();
    v_meters bigint;
BEGIN
    INSERT INTO public.scada_events (id, event_type, substation_id, feeder_id, event_timestamp, meters_checked_at)
    VALUES (v_alarm, 'breaker_trip', 'FLOOR', p_feeder, p_at, now());
    CREATE TEMP TABLE IF NOT EXISTS floor_trip_meters (id uuid, customer_id uuid, dp_id uuid, feeder_id uuid,
                                                       substation_id uuid) ON COMMIT DROP;
    INSERT INTO floor_trip_meters
    SELECT m.id, m.customer_id, m.dp_id, m.feeder_id, m.substation_id
    FROM public.oms_meters m JOIN public.network_feeders f ON f.id = m.feeder_id WHERE f.feeder_id = p_feeder;
    UPDATE public.oms_meters m SET power_status = 'off', communication_status = 'offline', last_event_at = p_at,
                                   updated_at = now()
    FROM floor_trip_meters t WHERE m.id = t.id;
    GET DIAGNOSTICS v_meters = ROW_COUNT;
    INSERT INTO public.oms_meter_status_events (meter_id, event_type, source_type, source_event_id, previous_status,
                                                new_status, event_timestamp, confidence_score, metadata)
    SELECT t.id, 'power_off', 'scada', v_alarm::text, 'off', 'off', p_at, 0.9, jsonb_build_object('floor', true)
    FROM floor_trip_meters t;
    INSERT INTO public.scada_event_affected_meters (scada_event_id, meter_id, meter_status_before, meter_status_after)
    SELECT v_alarm, t.id, 'off', 'off' FROM floor_trip_meters t;
    INSERT INTO public.oms_outage_events (id, event_id, status, confidence_score, affected_customers_count,
                                         customers_out, first_detected_at, scope, device_key, opened_at)
    VALUES (v_outage, 'FLOOR-' || v_outage, 'confirmed', 1.0, v_meters, v_meters, p_at, 'feeder',
            'floor:' || v_outage, p_at);
    INSERT INTO public.oms_outage_meters (outage_id, meter_id, off_at, customer_key, customer_id, dp_id, feeder_id,
                                          substation_id, first_source, first_source_event_id, origin_outage_id)
    SELECT v_outage, t.id, p_at, coalesce(t.customer_id, t.id), t.customer_id, t.dp_id, t.feeder_id, t.substation_id,
           'scada', v_alarm::text, v_outage
    FROM floor_trip_meters t;
    INSERT INTO public.oms_outage_customers (outage_id, customer_id)
    SELECT DISTINCT v_outage, t.customer_id FROM floor_trip_meters t WHERE t.customer_id IS NOT NULL;
    RETURN v_meters;
END
$$;
