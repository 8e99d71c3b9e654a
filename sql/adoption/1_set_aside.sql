-- Adopting a legacy database, step 1 of 3: runs before anything else in CREATE EXTENSION.
--
-- The legacy database already has tables, views and functions with the extension's names, built
-- by hand-run scripts. PostgreSQL 15 will not let an extension script CREATE OR REPLACE (or
-- IF NOT EXISTS) over objects it does not own, so nothing here creates over them. Instead:
--   1. (here)  the legacy tables move, whole and untouched, into a holding schema; the legacy
--              functions and views of our names are dropped, their privileges noted;
--   2. (2_take_in.sql, once our tables exist) each legacy table moves back in place of our empty
--              one, becomes a member of the extension, and gains what it lacks;
--   3. (3_carry_over_grants.sql, last) the noted privileges are granted on our replacements.
-- It is one transaction: consumers wait on the table locks for its length, and then call the new
-- functions. On a fresh database this finds nothing and creates nothing. The README explains it.
DO $set_aside$
DECLARE
    -- The extension's objects, as created by sql/schema and sql/functions (a #[pg_test] keeps
    -- these lists equal to the installed extension's members).
    our_tables constant text[] := ARRAY[
        'network_substations', 'network_feeders', 'network_distribution_points', 'oms_customers', 'onus',
        'oms_meters', 'network_substation_meters', 'network_feeder_meters', 'oms_meter_status_events',
        'oms_outage_events', 'oms_event_sources', 'oms_event_timeline', 'oms_correlation_rules',
        'oms_storm_mode_config', 'scada_alarm_vocabulary', 'scada_events', 'scada_event_affected_meters',
        'meters', 'onu_events', 'kaifa_events', 'kaifa_event_headers', 'kaifa_event_users',
        'kaifa_event_payloads', 'kaifa_event_assets', 'kaifa_event_usage_points', 'kaifa_event_details',
        'kaifa_event_names', 'kaifa_event_status', 'kaifa_event_metadata', 'kaifa_event_original_messages',
        'callcenter_tickets', 'callcenter_customers', 'callcenter_ticket_status_history',
        'callcenter_raw_messages', 'oms_rejected_events', 'scada_raw_messages', 'oms_outage_customers',
        'oms_crew_assignments', 'oms_customer_notifications', 'oms_smart_meters', 'oms_onu_devices',
        'oms_outage_meters', 'oms_signal_rate', 'oms_storm_mode_log', 'oms_correlation_queue',
        'oms_correlation_set_aside', 'oms_correlation_inputs', 'oms_correlation_state',
        'oms_correlation_pending', 'oms_momentary_interruptions'];
    our_views constant text[] := ARRAY[
        'oms_meters_with_topology', 'network_substations_with_meters', 'network_feeders_with_meters',
        'oms_active_outages', 'oms_correlation_summary', 'oms_unmatched_events', 'oms_source_summary',
        'oms_outage_interruptions', 'oms_flapping_meters', 'oms_storm_mode', 'oms_correlation_status',
        'oms_suspected_mismapped_meters'];
    our_functions constant text[] := ARRAY[
        'insert_scada_event_with_meter_check', 'insert_scada_event_from_json',
        'insert_onu_event_from_json_with_meter_sync', 'insert_onu_event_from_json',
        'insert_kaifa_event_from_json_with_meter_sync', 'insert_kaifa_event_from_json',
        'insert_callcenter_ticket_from_json_with_meter_link', 'insert_callcenter_ticket_from_json',
        'get_meters_by_substation', 'get_meters_by_feeder', 'update_meter_status', 'process_scada_event_meters',
        'sync_callcenter_tickets_to_meters', 'oms_uuid_v7', 'oms_update_meter_status',
        'oms_process_scada_event_meters', 'oms_meter_scope', 'oms_merge_seeded_row', 'oms_sync_meter_registry',
        'oms_guard_drop', 'oms_keep_data_on_drop', 'oms_source_weight', 'oms_update_updated_at',
        'onu_update_updated_at', 'cc_update_updated_at', 'update_updated_at_column', 'oms_stub_unknown_onu',
        'oms_fill_api_columns', 'haversine_distance_meters', 'oms_data_at_stake', 'oms_fill_onu_stub', 'oms_finish_adoption',
        'oms_unpartition', 'oms_mirror_row', 'oms_correlate_events', 'oms_announce_outages',
        'oms_announce_status_set', 'oms_close_outage_set_by_status', 'oms_engine_is_writing', 'oms_momentary_window', 'oms_outage_class',
        'oms_reliability_indices', 'oms_storm_mode_refresh', 'oms_meter_is_flapping', 'oms_announce_changes',
        'oms_correlation_retry', 'oms_correlate_pending', 'oms_outage_explain', 'oms_check_references',
        'oms_check_references_per_statement', 'oms_registry_changed', 'oms_outages_changed'];
    home_ns constant regnamespace := '@extschema@'::regnamespace;
    home constant text := (SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = '@extschema@'::regnamespace);
    legacy record;
    dependent record;
BEGIN
    -- Anything of ours already there that is not a table (a view named oms_meters, say) cannot be
    -- adopted; say so before touching anything.
    SELECT c.relname, c.relkind INTO legacy
    FROM pg_class c
    WHERE c.relnamespace = home_ns AND c.relname = ANY (our_tables) AND c.relkind NOT IN ('r', 'p');
    IF FOUND THEN
        RAISE EXCEPTION 'cannot adopt "%": it exists but is not a table (relkind %)', legacy.relname, legacy.relkind
            USING HINT = 'Rename or drop it, then run CREATE EXTENSION oms_correlation again.';
    END IF;

    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = home_ns AND c.relname = ANY (our_tables || our_views))
       AND NOT EXISTS (SELECT FROM pg_proc p WHERE p.pronamespace = home_ns AND p.proname = ANY (our_functions)) THEN
        RETURN;  -- a fresh database
    END IF;

    CREATE SCHEMA oms_correlation_adoption;
    -- The names of a relation's columns by number, in order: how step 2 compares keys and indexes.
    CREATE FUNCTION oms_correlation_adoption.column_names(rel oid, attnums int2[]) RETURNS text[]
    LANGUAGE sql STABLE AS $$
        SELECT ARRAY(SELECT a.attname::text FROM unnest(attnums) WITH ORDINALITY AS u(n, i)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = rel AND a.attnum = u.n ORDER BY u.i)
    $$;
    -- A constraint or index definition as step 2 compares it: a definition read back from the
    -- catalog prints casts and parentheses differently, and an added check may still be NOT VALID.
    CREATE FUNCTION oms_correlation_adoption.bare_definition(definition text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
        SELECT regexp_replace(regexp_replace(definition, ' NOT VALID$', ''), '(::[a-z ]+(\[\])?|[() ])', '', 'g')
    $$;
    -- How a legacy column's type stands to ours (step 2 decides what to do with it):
    --   'in_place'  ours holds every legacy value and the change is binary-coercible: varchar(n) to
    --               varchar(m >= n) or text, numeric(p,s) to numeric or numeric(q >= p,s);
    --   'keep'      the legacy type already holds every value of ours: it stays;
    --   'other'     anything else: converted only where every value survives the round trip.
    CREATE FUNCTION oms_correlation_adoption.type_relation(legacy text, ours text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE
        text_like constant text := '^(text|character varying(\((\d+)\))?)$';
        numeric_like constant text := '^numeric(\((\d+),(\d+)\))?$';
        l text[];
        o text[];
    BEGIN
        IF legacy ~ text_like AND ours ~ text_like THEN
            l := regexp_match(legacy, text_like);
            o := regexp_match(ours, text_like);
            IF o[3] IS NULL THEN
                RETURN 'in_place';
            ELSIF l[3] IS NOT NULL AND l[3]::int <= o[3]::int THEN
                RETURN 'in_place';
            END IF;
            RETURN 'keep';
        ELSIF legacy ~ numeric_like AND ours ~ numeric_like THEN
            l := regexp_match(legacy, numeric_like);
            o := regexp_match(ours, numeric_like);
            IF o[2] IS NULL OR (l[2] IS NOT NULL AND l[3] = o[3] AND l[2]::int <= o[2]::int) THEN
                RETURN 'in_place';
            ELSIF l[2] IS NULL OR (l[3]::int >= o[3]::int AND l[2]::int - l[3]::int >= o[2]::int - o[3]::int) THEN
                RETURN 'keep';
            END IF;
        END IF;
        RETURN 'other';
    END
    $$;
    -- Privileges on the legacy functions and views, granted again on ours by step 3.
    CREATE TABLE oms_correlation_adoption.legacy_privileges (
        object_kind     text NOT NULL,      -- 'function' or 'view'
        object_name     text NOT NULL,
        identity_args   text,               -- functions: pg_get_function_identity_arguments
        acl             aclitem[]           -- NULL: the default, EXECUTE for PUBLIC
    );
    -- Triggers that call a legacy function of our name (the legacy updated_at triggers): dropped
    -- with it, and made again by step 2 on our function of that name, unless ours has the trigger.
    CREATE TABLE oms_correlation_adoption.legacy_triggers (
        table_name      text NOT NULL,
        trigger_name    text NOT NULL,
        definition      text NOT NULL
    );

    FOR legacy IN
        SELECT p.oid::regprocedure::text AS signature, p.proname, pg_get_function_identity_arguments(p.oid) AS args, p.proacl
        FROM pg_proc p
        WHERE p.pronamespace = home_ns AND p.proname = ANY (our_functions)
    LOOP
        INSERT INTO oms_correlation_adoption.legacy_privileges VALUES ('function', legacy.proname, legacy.args, legacy.proacl);
        INSERT INTO oms_correlation_adoption.legacy_triggers
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE t.tgfoid = legacy.signature::regprocedure AND NOT t.tgisinternal AND t.tgparentid = 0;
        FOR dependent IN
            SELECT t.tgname, t.tgrelid::regclass AS tab FROM pg_trigger t
            WHERE t.tgfoid = legacy.signature::regprocedure AND NOT t.tgisinternal AND t.tgparentid = 0
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', dependent.tgname, dependent.tab);
        END LOOP;
        -- RESTRICT: a DBA's own object built on the old function stops the install and names itself.
        EXECUTE format('DROP FUNCTION %s', legacy.signature);
        RAISE WARNING 'oms_correlation adoption: replaced legacy function %', legacy.signature;
    END LOOP;

    FOR legacy IN
        SELECT c.oid::regclass::text AS view, c.relname, c.relacl, c.relkind
        FROM pg_class c
        WHERE c.relnamespace = home_ns AND c.relname = ANY (our_views) AND c.relkind IN ('v', 'm')
    LOOP
        INSERT INTO oms_correlation_adoption.legacy_privileges VALUES ('view', legacy.relname, NULL, legacy.relacl);
        EXECUTE format('DROP %s %s', CASE legacy.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END, legacy.view);
        RAISE WARNING 'oms_correlation adoption: replaced legacy view %', legacy.view;
    END LOOP;

    -- All locks first, in one statement, tables that refer to others before the tables they refer
    -- to: a consumer's insert locks its table and then, for its foreign keys, the tables referred
    -- to, so taking them in that order makes it wait instead of deadlock.
    EXECUTE (
        WITH RECURSIVE legacy_tables AS (
            SELECT c.oid FROM pg_class c
            WHERE c.relnamespace = home_ns AND c.relname = ANY (our_tables) AND NOT c.relispartition
        ), refers AS (
            SELECT DISTINCT k.conrelid AS child, k.confrelid AS parent FROM pg_constraint k
            WHERE k.contype = 'f' AND k.conrelid <> k.confrelid
              AND k.conrelid IN (SELECT oid FROM legacy_tables) AND k.confrelid IN (SELECT oid FROM legacy_tables)
        ), depth AS (
            SELECT oid, 0 AS d FROM legacy_tables
            UNION ALL
            SELECT r.child, depth.d + 1 FROM refers r JOIN depth ON depth.oid = r.parent WHERE depth.d < 40
        )
        SELECT 'LOCK TABLE ' || string_agg(oid::regclass::text, ', ' ORDER BY d DESC, oid) || ' IN ACCESS EXCLUSIVE MODE'
        FROM (SELECT oid, max(d) AS d FROM depth GROUP BY oid) AS ordered);

    -- SET SCHEMA carries the table's rows, indexes, constraints, triggers, grants and owned
    -- sequences, and rewrites nothing; objects that refer to it do so by oid and follow it.
    FOR legacy IN
        SELECT c.oid::regclass AS tab
        FROM pg_class c
        WHERE c.relnamespace = home_ns AND c.relname = ANY (our_tables) AND NOT c.relispartition
          AND NOT EXISTS (SELECT FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER TABLE %s SET SCHEMA oms_correlation_adoption', legacy.tab);
    END LOOP;
END
$set_aside$;
