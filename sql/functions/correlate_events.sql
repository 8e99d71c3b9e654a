-- oms_correlate_events (SPEC §5.9): the legacy correlation entry point. The consumers call it
-- through the operations API right after each ingest, with these ids (LEGACY_SCHEMA.md): SCADA
-- 'scada_<scada_events.id>', ONU the payload's eventId, Kaifa the payload's event_id or else
-- 'kaifa_<kaifa_events.id>', call center 'cc_<callcenter_tickets.id>'.
--
-- The ingest call has already correlated an event the extension stored, so for those it only
-- answers which outage that was (NULL: none, or a payload rejected as bad input) and writes
-- nothing. An id the extension never stored (an external system's, an operator's) keeps the
-- legacy behaviour: it joins an open outage within the radius and the window, or opens one at its
-- coordinates; once per source type and id. Without coordinates there is nowhere to put it: NULL.
CREATE FUNCTION @extschema@.oms_correlate_events(
    p_event_type varchar, p_source_type varchar, p_source_event_id varchar, p_timestamp timestamptz,
    p_latitude numeric, p_longitude numeric, p_correlation_window_minutes integer,
    p_spatial_radius_meters integer)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    v_source text := lower(replace(coalesce(p_source_type, ''), '-', '_'));
    v_id text := coalesce(p_source_event_id, '');
    stored_key text;
    stored boolean := false;
    outage uuid;
    window_minutes integer := coalesce(p_correlation_window_minutes, 30);
    radius integer := coalesce(p_spatial_radius_meters, 1000);
    weight numeric;
    opened boolean := false;
BEGIN
    IF v_source = 'callcenter' THEN
        v_source := 'call_center';
    END IF;
    -- 1. An event the extension stored: the source key its ingest recorded it under.
    IF v_source = 'scada' AND v_id ~* '^scada_' THEN
        IF substr(v_id, 7) !~* '^[0-9a-f-]{36}$' THEN
            RETURN NULL;  -- the ingest returned no id: a rejected payload
        END IF;
        SELECT true, e.outage_event_id INTO stored, outage FROM scada_events e WHERE e.id = substr(v_id, 7)::uuid;
        IF stored THEN
            RETURN outage;
        END IF;
    ELSIF v_source = 'call_center' AND v_id ~* '^cc_' THEN
        IF substr(v_id, 4) !~* '^[0-9a-f-]{36}$' THEN
            RETURN NULL;
        END IF;
        SELECT t.external_ticket_id INTO stored_key FROM callcenter_tickets t WHERE t.id = substr(v_id, 4)::uuid;
    ELSIF v_source = 'kaifa' AND v_id ~* '^kaifa_' THEN
        IF substr(v_id, 7) !~* '^[0-9a-f-]{36}$' THEN
            RETURN NULL;
        END IF;
        SELECT substr(k.delivery_key, strpos(k.delivery_key, ':') + 1) INTO stored_key FROM kaifa_events k WHERE k.id = substr(v_id, 7)::uuid;
    ELSIF v_source = 'kaifa' THEN
        SELECT substr(k.delivery_key, strpos(k.delivery_key, ':') + 1) INTO stored_key
        FROM kaifa_event_payloads p JOIN kaifa_events k ON k.id = p.event_id
        WHERE p.event_id_value = v_id AND k.delivery_key IS NOT NULL LIMIT 1;
    ELSIF v_source = 'onu' THEN
        SELECT e.event_id INTO stored_key FROM onu_events e WHERE e.event_id = v_id;
    END IF;
    IF stored_key IS NOT NULL THEN
        SELECT s.outage_event_id INTO outage FROM oms_event_sources s
        JOIN oms_outage_events o ON o.id = s.outage_event_id
        WHERE s.source_type = v_source AND s.source_event_id = stored_key
        ORDER BY o.first_detected_at DESC LIMIT 1;
        RETURN outage;
    END IF;
    -- A payload the ingest rejected: nothing to correlate.
    IF EXISTS (SELECT FROM oms_rejected_events r
               WHERE r.source = v_source
                 AND (r.raw_payload ->> 'eventId' = v_id OR r.raw_payload #>> '{payload,event_id}' = v_id
                      OR r.raw_payload ->> 'ticketId' = v_id)) THEN
        RETURN NULL;
    END IF;

    -- 2. An external event: once per source type and id.
    PERFORM pg_advisory_xact_lock(1869440366, hashtext(v_source || ':' || v_id));
    SELECT s.outage_event_id INTO outage FROM oms_event_sources s
    WHERE s.source_type = v_source AND s.source_event_id = v_id LIMIT 1;
    IF outage IS NOT NULL OR p_latitude IS NULL OR p_longitude IS NULL THEN
        RETURN outage;
    END IF;
    SELECT o.id INTO outage FROM oms_outage_events o
    WHERE o.status IN ('detected', 'confirmed', 'in_progress')
      AND o.event_latitude IS NOT NULL AND o.event_longitude IS NOT NULL
      AND o.first_detected_at BETWEEN p_timestamp - make_interval(mins => window_minutes)
                                  AND p_timestamp + make_interval(mins => window_minutes)
      AND haversine_distance_meters(o.event_latitude, o.event_longitude, p_latitude, p_longitude) <= radius
    ORDER BY haversine_distance_meters(o.event_latitude, o.event_longitude, p_latitude, p_longitude)
    LIMIT 1
    FOR UPDATE;
    weight := coalesce(oms_source_weight(v_source), 0.5);
    IF outage IS NULL THEN
        INSERT INTO oms_outage_events (event_id, event_type, status, severity, confidence_score, description,
                                       event_latitude, event_longitude, first_detected_at)
        VALUES ('OMS_EXT_' || upper(v_source) || '_' || to_char(coalesce(p_timestamp, now()) AT TIME ZONE 'UTC',
                                                              'YYYYMMDD"T"HH24MISS')
                    || '_' || substr(md5(v_source || ':' || v_id), 1, 16),
                coalesce(nullif(p_event_type, ''), 'outage'), 'detected', 'medium', weight,
                format('Reported by %s event %s', v_source, v_id), p_latitude, p_longitude, coalesce(p_timestamp, now()))
        RETURNING oms_outage_events.id INTO outage;
        opened := true;
        INSERT INTO oms_event_timeline (outage_event_id, event_type, status, description, source, "timestamp",
                                        event_description, event_timestamp, created_by)
        VALUES (outage, 'outage_detected', 'detected', format('Reported by %s event %s', v_source, v_id), v_source,
                coalesce(p_timestamp, now()), format('Reported by %s event %s', v_source, v_id), coalesce(p_timestamp, now()),
                'oms_correlate_events');
    ELSE
        INSERT INTO oms_event_timeline (outage_event_id, event_type, status, description, source, "timestamp",
                                        event_description, event_timestamp, created_by)
        SELECT outage, 'source_joined', o.status, format('%s event %s joined', v_source, v_id), v_source,
               coalesce(p_timestamp, now()), format('%s event %s joined', v_source, v_id), coalesce(p_timestamp, now()),
               'oms_correlate_events'
        FROM oms_outage_events o WHERE o.id = outage;
    END IF;
    INSERT INTO oms_event_sources (outage_event_id, source_type, source_event_id, source_table, correlation_weight,
                                   detected_at, event_timestamp, confidence_weight)
    VALUES (outage, v_source, v_id, 'oms_correlate_events', weight, coalesce(p_timestamp, now()), coalesce(p_timestamp, now()),
            weight)
    ON CONFLICT (outage_event_id, source_type, source_event_id) DO NOTHING;
    -- Confidence: 1 - prod(1 - w) over the outage's sources (SPEC §5.2).
    UPDATE oms_outage_events o SET
        confidence_score = (SELECT CASE WHEN bool_or(w >= 1) THEN 1 ELSE 1 - exp(sum(ln(1 - least(w, 0.9999)))) END
                            FROM (SELECT correlation_weight AS w FROM oms_event_sources
                                  WHERE outage_event_id = o.id AND correlation_weight IS NOT NULL) AS weights),
        last_updated_at = now()
    WHERE o.id = outage;
    PERFORM oms_announce_outages(ARRAY[outage], ARRAY[CASE WHEN opened THEN 'opened' ELSE 'joined' END],
                                 v_source, v_id);
    RETURN outage;
END
$$;
