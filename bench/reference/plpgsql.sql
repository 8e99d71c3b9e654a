-- A straightforward PL/pgSQL implementation of the same behaviour, for the benchmarks only.
--
-- It is written the way the legacy functions were: parse with ->>, look things up one at a time,
-- and loop over meters, one UPDATE and one INSERT per meter. It writes the same tables as the
-- extension, so both run on the same grid and the speedup is measured, not claimed. It skips the
-- extension's validation, deduplication and quarantine; it is a lower bound on the legacy cost.

CREATE SCHEMA reference;

CREATE FUNCTION reference.apply_meter_status(p_meter uuid, p_event_type text, p_power text, p_comm text,
                                             p_source text, p_source_event_id text, p_at timestamptz,
                                             p_confidence numeric, p_metadata jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m record;
BEGIN
    SELECT power_status, communication_status INTO m FROM public.oms_meters WHERE id = p_meter FOR UPDATE;
    UPDATE public.oms_meters
       SET power_status = coalesce(p_power, power_status),
           communication_status = coalesce(p_comm, communication_status),
           last_power_change = CASE WHEN p_power IS DISTINCT FROM power_status AND p_power IS NOT NULL
                                    THEN p_at ELSE last_power_change END,
           last_communication = CASE WHEN p_comm = 'online' THEN p_at ELSE last_communication END,
           last_status_change = p_at, last_event_at = p_at, updated_at = now()
     WHERE id = p_meter;
    INSERT INTO public.oms_meter_status_events (meter_id, event_type, source_type, source_event_id, previous_status,
                                                new_status, event_timestamp, confidence_score, metadata)
    VALUES (p_meter, p_event_type, p_source, p_source_event_id,
            CASE WHEN p_power IS NOT NULL THEN m.power_status ELSE m.communication_status END,
            coalesce(p_power, p_comm), p_at, p_confidence, p_metadata);
END
$$;

CREATE FUNCTION reference.insert_onu_event_from_json_with_meter_sync(json_data jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_id integer;
    v_onu integer := (json_data->>'onuId')::integer;
    v_type text := json_data->>'type';
    v_at timestamptz := (json_data->>'timestamp')::timestamptz;
    v_meter record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.onus WHERE id = v_onu) THEN
        INSERT INTO public.onus (id, onu_serial_no) VALUES (v_onu, nullif(json_data->>'onuSerial', ''));
    END IF;
    INSERT INTO public.onu_events (event_id, onu_id, event_type, "timestamp", alarm_category, alarm_type, nms_type,
                                   raw_payload)
    VALUES (json_data->>'eventId', v_onu, v_type, v_at, json_data->'alarmData'->>'category',
            json_data->'alarmData'->>'alarmType', json_data->>'nmsType', json_data)
    RETURNING id INTO v_id;
    IF v_type IN ('ONU_LastGaspAlert', 'ONU_PowerRestored') THEN
        FOR v_meter IN SELECT id FROM public.oms_meters WHERE onu_id = v_onu AND status = 'active' ORDER BY id LOOP
            PERFORM reference.apply_meter_status(v_meter.id, CASE v_type WHEN 'ONU_LastGaspAlert' THEN 'power_off' ELSE 'power_on' END,
                CASE v_type WHEN 'ONU_LastGaspAlert' THEN 'off' ELSE 'on' END,
                CASE v_type WHEN 'ONU_LastGaspAlert' THEN 'offline' ELSE 'online' END,
                'onu', json_data->>'eventId', v_at, 0.85, jsonb_build_object('onu_id', v_onu));
            UPDATE public.onu_events SET meter_id = coalesce(meter_id, v_meter.id) WHERE id = v_id;
        END LOOP;
    END IF;
    RETURN v_id;
END
$$;

CREATE FUNCTION reference.insert_callcenter_ticket_from_json_with_meter_link(json_data jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_meter uuid;
    v_at timestamptz := (json_data->>'timestamp')::timestamptz;
BEGIN
    INSERT INTO public.callcenter_tickets (external_ticket_id, intake_id, status, intake_timestamp, source)
    VALUES (json_data->>'ticketId', json_data->'intake'->>'intakeId', 'open', v_at, json_data->>'source')
    RETURNING id INTO v_id;
    SELECT id INTO v_meter FROM public.oms_meters WHERE meter_number = json_data->'customer'->>'meterNumber';
    INSERT INTO public.callcenter_customers (ticket_id, phone, meter_number, address, meter_id)
    VALUES (v_id, json_data->'customer'->>'phone', json_data->'customer'->>'meterNumber',
            json_data->'customer'->>'address', v_meter);
    INSERT INTO public.callcenter_ticket_status_history (ticket_id, status, changed_at) VALUES (v_id, 'open', v_at);
    INSERT INTO public.callcenter_raw_messages (ticket_id, raw_payload) VALUES (v_id, json_data);
    IF v_meter IS NOT NULL THEN
        INSERT INTO public.oms_meter_status_events (meter_id, event_type, source_type, source_event_id, previous_status,
                                                    new_status, event_timestamp, confidence_score, applied, metadata)
        SELECT v_meter, 'power_off', 'call_center', json_data->>'ticketId', power_status, 'off', v_at, 0.60, false,
               jsonb_build_object('ticket_id', json_data->>'ticketId', 'customer_phone', json_data->'customer'->>'phone')
        FROM public.oms_meters WHERE id = v_meter;
    END IF;
    RETURN v_id;
END
$$;

CREATE FUNCTION reference.insert_kaifa_event_from_json_with_meter_sync(json_data jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_payload jsonb := json_data->'payload';
    v_header jsonb := json_data->'header';
    v_at timestamptz := coalesce(nullif(v_payload->>'created_date_time', ''), nullif(v_header->>'timestamp', ''),
                                 json_data->>'timestamp')::timestamptz;
    v_mrid text := v_payload->'assets'->>'ns2:mRID';
    v_up text := v_payload->'usage_point'->>'ns2:mRID';
    v_meter uuid;
    v_code text := v_payload->'event_type'->>'@ref';
    v_detail jsonb;
BEGIN
    INSERT INTO public.kaifa_events (message_type, event_timestamp, delivery_key)
    VALUES (json_data->>'message_type', v_at, 'message_id:' || (v_header->>'message_id'))
    RETURNING id INTO v_id;
    INSERT INTO public.kaifa_event_headers (event_id, verb, noun, revision, header_timestamp, source, async_reply_flag,
                                            ack_required, message_id, correlation_id)
    VALUES (v_id, v_header->>'verb', v_header->>'noun', v_header->>'revision', (v_header->>'timestamp')::timestamptz,
            v_header->>'source', (v_header->>'async_reply_flag')::boolean, (v_header->>'ack_required')::boolean,
            v_header->>'message_id', v_header->>'correlation_id');
    INSERT INTO public.kaifa_event_users (event_id, user_id, organization)
    VALUES (v_id, v_header->'user'->>'ns1:UserID', v_header->'user'->>'ns1:Organization');
    INSERT INTO public.kaifa_event_payloads (event_id, event_id_value, created_date_time, issuer_id, reason, severity,
                                             event_type_ref)
    VALUES (v_id, v_payload->>'event_id', v_at, v_payload->>'issuer_id', v_payload->>'reason', v_payload->>'severity',
            v_code);
    SELECT id INTO v_meter FROM public.oms_meters WHERE asset_mrid = v_mrid;
    INSERT INTO public.kaifa_event_assets (event_id, mrid, name, meter_id)
    VALUES (v_id, v_mrid, v_payload->'assets'->'ns2:Names'->>'ns2:name', v_meter);
    INSERT INTO public.kaifa_event_usage_points (event_id, mrid, meter_id)
    VALUES (v_id, v_up, (SELECT id FROM public.oms_meters WHERE usage_point_mrid = v_up));
    FOR v_detail IN SELECT * FROM jsonb_array_elements(v_payload->'event_details') LOOP
        INSERT INTO public.kaifa_event_details (event_id, name, value)
        VALUES (v_id, v_detail->>'ns2:name', v_detail->>'ns2:value');
    END LOOP;
    INSERT INTO public.kaifa_event_status (event_id, date_time, value)
    VALUES (v_id, (v_payload->'status'->>'ns2:dateTime')::timestamptz, v_payload->'status'->>'ns2:value');
    INSERT INTO public.kaifa_event_metadata (event_id, source, metadata)
    VALUES (v_id, json_data->'metadata'->>'source', json_data->'metadata');
    INSERT INTO public.kaifa_event_original_messages (event_id, source, topic, original_message)
    VALUES (v_id, json_data->'original_message'->>'source', json_data->'original_message'->>'topic',
            json_data->'original_message');
    IF v_meter IS NOT NULL THEN
        IF v_code LIKE '3.26.0.85' OR v_code LIKE '3.26.0.47' OR lower(v_payload->>'severity') IN ('critical', 'high') THEN
            PERFORM reference.apply_meter_status(v_meter, 'power_off', 'off', 'offline', 'kaifa',
                                                 v_header->>'message_id', v_at, 0.90, '{}'::jsonb);
        ELSIF v_code LIKE '3.26.0.216' OR v_code LIKE '3.26.0.49' THEN
            PERFORM reference.apply_meter_status(v_meter, 'power_on', 'on', 'online', 'kaifa',
                                                 v_header->>'message_id', v_at, 0.90, '{}'::jsonb);
        END IF;
    END IF;
    RETURN v_id;
END
$$;

CREATE FUNCTION reference.insert_scada_event_with_meter_check(json_data jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_at timestamptz := (json_data->>'timestamp')::timestamptz;
    v_substation uuid;
    v_feeder uuid;
    v_meter record;
    v_total int := 0;
    v_offline int := 0;
    v_online int := 0;
    v_unknown int := 0;
    v_outage uuid;
BEGIN
    INSERT INTO public.scada_events (event_type, substation_id, feeder_id, alarm_type, event_timestamp, severity, reason)
    VALUES (json_data->>'eventType', json_data->>'substationId', json_data->>'feederId', json_data->>'alarmType', v_at,
            json_data->>'severity', json_data->>'reason')
    RETURNING id INTO v_id;
    SELECT id INTO v_substation FROM public.network_substations WHERE substation_id = json_data->>'substationId';
    SELECT id INTO v_feeder FROM public.network_feeders WHERE feeder_id = json_data->>'feederId';
    FOR v_meter IN SELECT * FROM public.oms_meters
                   WHERE (v_feeder IS NOT NULL AND feeder_id = v_feeder)
                      OR (v_feeder IS NULL AND substation_id = v_substation) LOOP
        CONTINUE WHEN v_meter.status <> 'active';
        v_total := v_total + 1;
        IF v_meter.power_status = 'off' OR v_meter.communication_status = 'offline'
           OR v_meter.last_communication IS NULL OR v_meter.last_communication < v_at - interval '15 minutes' THEN
            v_offline := v_offline + 1;
            IF v_outage IS NULL THEN
                SELECT id INTO v_outage FROM public.oms_outage_events
                 WHERE feeder_id IS NOT DISTINCT FROM v_feeder AND substation_id = v_substation AND dp_id IS NULL
                   AND status IN ('detected', 'confirmed', 'in_progress');
                IF v_outage IS NULL THEN
                    INSERT INTO public.oms_outage_events (event_id, status, substation_id, feeder_id, first_detected_at)
                    VALUES ('REF_' || v_id, 'detected', v_substation, v_feeder, v_at)
                    RETURNING id INTO v_outage;
                END IF;
            END IF;
            INSERT INTO public.scada_event_affected_meters (scada_event_id, meter_id, meter_status_before, meter_status_after)
            VALUES (v_id, v_meter.id, v_meter.power_status, 'off');
            PERFORM reference.apply_meter_status(v_meter.id, 'power_off', 'off', NULL, 'scada', v_id::text, v_at, 0.90,
                                                 '{}'::jsonb);
        ELSIF v_meter.power_status = 'on' AND v_meter.communication_status = 'online' THEN
            v_online := v_online + 1;
        ELSE
            v_unknown := v_unknown + 1;
        END IF;
    END LOOP;
    IF v_outage IS NOT NULL THEN
        INSERT INTO public.oms_event_sources (outage_event_id, source_type, source_event_id, source_table, correlation_weight)
        VALUES (v_outage, 'scada', v_id::text, 'scada_events', 1.0) ON CONFLICT DO NOTHING;
        INSERT INTO public.oms_event_timeline (outage_event_id, event_type, status, source, "timestamp")
        VALUES (v_outage, 'outage_detected', 'detected', 'scada', v_at);
        UPDATE public.oms_outage_events SET affected_customers_count = v_offline, last_updated_at = now() WHERE id = v_outage;
    END IF;
    UPDATE public.scada_events SET affected_meter_count = v_offline, meters_checked_at = now(), outage_event_id = v_outage
     WHERE id = v_id;
    RETURN jsonb_build_object('scada_event_id', v_id, 'meters_checked', true, 'total_meters', v_total,
                              'offline_meters', v_offline, 'online_meters', v_online, 'unknown_meters', v_unknown,
                              'outage_event_id', v_outage);
END
$$;
