-- The outage stream (SPEC §5.8): every change to an outage is announced on channel 'oms_outage',
-- delivered at commit. These functions are the one place that builds the message, from the outage
-- row as the change left it, so every announcement has the same keys; fixed-width fields and a
-- short list of changes keep it far below NOTIFY's 8000 bytes.

-- A correlator batch's announcements (src/correlation/stream.rs): one per outage it changed, with
-- the list of its changes (comma-separated in p_changes), the last one as `change`, and the source
-- of the last change.
CREATE FUNCTION @extschema@.oms_announce_changes(
    p_outage_ids uuid[], p_changes text[], p_source_types text[], p_source_event_ids text[])
RETURNS void
-- PL/pgSQL keeps its plan for the session (a SQL function with a pinned search_path is planned
-- again at every call).
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('oms_outage', json_build_object(
        'outage_event_id', o.id, 'event_id', o.event_id,
        'change', CASE WHEN 'opened' = ANY (l.changes) AND o.status <> 'merged' THEN 'opened'
                       ELSE l.changes[cardinality(l.changes)] END,
        'changes', l.changes, 'status', o.status, 'rule', o.placement,
        'scope', o.scope, 'device_key', o.device_key, 'substation_id', o.substation_id,
        'feeder_id', o.feeder_id, 'dp_id', o.dp_id,
        'affected_customers_count', o.affected_customers_count, 'customers_out', o.customers_out,
        'confidence', o.confidence_score, 'first_detected_at', o.first_detected_at,
        'actual_restoration_time', o.actual_restoration_time, 'merged_into', o.merged_into,
        'parent_outage_id', o.parent_outage_id, 'source_type', left(c.source_type, 32),
        'source_event_id', left(c.source_event_id, 255))::text)
    FROM unnest(p_outage_ids, p_changes, p_source_types, p_source_event_ids) WITH ORDINALITY
         AS c(id, changes, source_type, source_event_id, n)
    CROSS JOIN LATERAL (SELECT (string_to_array(c.changes, ','))[1:16] AS changes) AS l
    -- By key, one outage at a time: the plan is generic, and a join could scan them all.
    CROSS JOIN LATERAL (SELECT * FROM oms_outage_events WHERE id = c.id) AS o
    ORDER BY c.n;
END
$$;

-- A status set by anyone but the correlator: one change, 'status_set'.
CREATE FUNCTION @extschema@.oms_announce_outages(
    p_outage_ids uuid[], p_changes text[], p_source_type text, p_source_event_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM oms_announce_changes(p_outage_ids, p_changes,
                                 array_fill(p_source_type, ARRAY[cardinality(p_outage_ids)]),
                                 array_fill(p_source_event_id, ARRAY[cardinality(p_outage_ids)]));
END
$$;

-- An operator (through the operations API's UPDATE) or a DBA setting an outage's status is an
-- outage change too. The engine's own status changes are announced by the engine, once.
CREATE FUNCTION @extschema@.oms_announce_status_set() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT oms_engine_is_writing() THEN
        PERFORM oms_announce_outages(ARRAY[NEW.id], ARRAY['status_set'], 'operator', current_user::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER oms_outage_status_announced
    AFTER UPDATE OF status ON @extschema@.oms_outage_events
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION @extschema@.oms_announce_status_set();

-- An operator (or a DBA) closing an outage by its status (restored, cleared, or cancelled as a
-- false alarm) ends it for its meters and customers too: otherwise they would stay "out" in a
-- closed outage for good, new signals would join it, and the indices would keep counting their
-- minutes. The correlator closes its own outages itself, and leaves an operator's closed. A role that sets statuses needs UPDATE on
-- oms_outage_meters and oms_outage_customers as well (this trigger runs with its rights).
CREATE FUNCTION @extschema@.oms_close_outage_set_by_status() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    -- When it ended, in event time: the operator's restoration time, else as far as the signals
    -- have come (the correlator's newest), else the clock.
    ended timestamptz := coalesce(NEW.actual_restoration_time,
                                  (SELECT newest_event_at FROM oms_correlation_state WHERE id = 1), now());
BEGIN
    IF oms_engine_is_writing() THEN
        RETURN NULL;
    END IF;
    UPDATE oms_outage_meters SET on_at = greatest(off_at, ended) WHERE outage_id = NEW.id AND on_at IS NULL;
    UPDATE oms_outage_customers SET restored_at = ended WHERE outage_id = NEW.id AND restored_at IS NULL;
    -- operator_closed_at: the correlator leaves it as the operator closed it, whatever comes later.
    UPDATE oms_outage_events
    SET customers_out = 0, operator_closed_at = pg_catalog.now(),
        actual_restoration_time = CASE WHEN NEW.status IN ('restored', 'cleared') THEN ended
                                       ELSE actual_restoration_time END
    WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER oms_outage_closed_by_status
    AFTER UPDATE OF status ON @extschema@.oms_outage_events
    FOR EACH ROW WHEN (OLD.status IN ('detected', 'confirmed', 'in_progress')
                       AND NEW.status IN ('restored', 'cleared', 'cancelled'))
    EXECUTE FUNCTION @extschema@.oms_close_outage_set_by_status();
