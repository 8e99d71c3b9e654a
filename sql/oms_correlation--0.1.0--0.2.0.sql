-- oms_correlation 0.1.0 -> 0.2.0: the meter-registry sync, the DROP EXTENSION guard, and an index
-- for out-of-order SCADA alarms. Released: never edit. Fresh installs get the same objects from
-- sql/schema/06_since_0_2_0.sql, sql/functions/sync.sql and sql/functions/drop_guard.sql;
-- tests/integration/test_upgrade.py checks that both paths agree.
\echo Use "ALTER EXTENSION oms_correlation UPDATE TO '0.2.0'" to load this file. \quit

-- Schema added in 0.2.0 (upgrades get it from sql/oms_correlation--0.1.0--0.2.0.sql).

-- "Is there a newer restoration of this device?" is asked by every SCADA outage alarm
-- (src/api/scada.rs); restorations are few, so a partial index answers it at once.
CREATE INDEX scada_events_restorations
    ON @extschema@.scada_events (substation_id, feeder_id, event_timestamp)
    WHERE (check_result ->> 'classification') = 'restoration';

-- oms_sync_meter_registry() (issue 6): builds or refreshes the meter registry from what the legacy
-- sources already know, and links their rows to it. Set-based: one statement per step, whatever
-- the number of meters; idempotent: a second call creates and links nothing.
--
--   * the ONU `meters` table: meter id as meter number, its ONU;
--   * Kaifa assets: the asset mRID (as meter number when no meter has it), with the usage point
--     reported in the same message;
--   * call-center tickets: the meter number the customer gave.
CREATE FUNCTION @extschema@.oms_sync_meter_registry()
RETURNS TABLE(meters_created int, meters_refreshed int, onu_meters_linked int, kaifa_assets_linked int,
              kaifa_usage_points_linked int, callcenter_customers_linked int)
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    created_onu int;
    created_kaifa int;
    created_callcenter int;
    refreshed_onu int;
    refreshed_kaifa int;
BEGIN
    -- ONU meters: new meters, then the ONU link on meters that lack it.
    INSERT INTO oms_meters (meter_number, meter_type, onu_id, location_lat, location_lng, status)
    SELECT m.meter_id, coalesce(m.meter_type, 'smart'), m.onu_id, m.location_lat, m.location_lng,
           CASE WHEN m.status IN ('active', 'inactive', 'decommissioned') THEN m.status ELSE 'active' END
    FROM meters m
    WHERE m.meter_id IS NOT NULL AND m.meter_id <> ''
    ON CONFLICT (meter_number) DO NOTHING;
    GET DIAGNOSTICS created_onu = ROW_COUNT;

    UPDATE oms_meters o SET onu_id = m.onu_id, updated_at = now()
    FROM meters m
    WHERE o.meter_number = m.meter_id AND m.onu_id IS NOT NULL AND o.onu_id IS DISTINCT FROM m.onu_id;
    GET DIAGNOSTICS refreshed_onu = ROW_COUNT;

    -- Kaifa assets: a meter per asset mRID nobody knows yet; the mRIDs on meters known by number.
    INSERT INTO oms_meters (meter_number, asset_mrid)
    SELECT DISTINCT a.mrid, a.mrid
    FROM kaifa_event_assets a
    WHERE a.mrid IS NOT NULL AND a.mrid <> ''
      AND NOT EXISTS (SELECT 1 FROM oms_meters o WHERE o.asset_mrid = a.mrid)
    ON CONFLICT (meter_number) DO NOTHING;
    GET DIAGNOSTICS created_kaifa = ROW_COUNT;

    WITH pairs AS (
        SELECT DISTINCT ON (a.mrid) a.mrid AS asset_mrid, u.mrid AS usage_point_mrid
        FROM kaifa_event_assets a
        LEFT JOIN kaifa_event_usage_points u ON u.event_id = a.event_id AND u.mrid IS NOT NULL AND u.mrid <> ''
        WHERE a.mrid IS NOT NULL AND a.mrid <> ''
        ORDER BY a.mrid, u.mrid NULLS LAST
    )
    UPDATE oms_meters o
    SET asset_mrid = coalesce(o.asset_mrid, p.asset_mrid),
        usage_point_mrid = coalesce(o.usage_point_mrid, p.usage_point_mrid),
        updated_at = now()
    FROM pairs p
    WHERE (o.meter_number = p.asset_mrid OR o.asset_mrid = p.asset_mrid)
      AND (o.asset_mrid IS NULL OR (o.usage_point_mrid IS NULL AND p.usage_point_mrid IS NOT NULL));
    GET DIAGNOSTICS refreshed_kaifa = ROW_COUNT;

    -- Call-center meter numbers.
    INSERT INTO oms_meters (meter_number)
    SELECT DISTINCT c.meter_number FROM callcenter_customers c
    WHERE c.meter_number IS NOT NULL AND c.meter_number <> ''
    ON CONFLICT (meter_number) DO NOTHING;
    GET DIAGNOSTICS created_callcenter = ROW_COUNT;

    meters_created := created_onu + created_kaifa + created_callcenter;
    meters_refreshed := refreshed_onu + refreshed_kaifa;

    -- Links, for the rows that have none yet.
    UPDATE meters m SET oms_meter_id = o.id
    FROM oms_meters o WHERE o.meter_number = m.meter_id AND m.oms_meter_id IS NULL;
    GET DIAGNOSTICS onu_meters_linked = ROW_COUNT;

    UPDATE kaifa_event_assets a SET meter_id = o.id
    FROM oms_meters o WHERE o.asset_mrid = a.mrid AND a.meter_id IS NULL;
    GET DIAGNOSTICS kaifa_assets_linked = ROW_COUNT;

    UPDATE kaifa_event_usage_points u SET meter_id = o.id
    FROM oms_meters o WHERE o.usage_point_mrid = u.mrid AND u.meter_id IS NULL;
    GET DIAGNOSTICS kaifa_usage_points_linked = ROW_COUNT;

    UPDATE callcenter_customers c SET meter_id = o.id
    FROM oms_meters o WHERE o.meter_number = c.meter_number AND c.meter_id IS NULL;
    GET DIAGNOSTICS callcenter_customers_linked = ROW_COUNT;

    RETURN NEXT;
END
$$;

-- What DROP EXTENSION does to data (issue 6).
--
-- The tables are members of the extension, so DROP EXTENSION would drop them and every outage
-- record with them. It refuses to while they hold data. A DBA chooses:
--   * SELECT oms_keep_data_on_drop();   the tables (and their sequences) leave the extension and
--                                       survive DROP EXTENSION; a later CREATE EXTENSION adopts
--                                       them again, rows and all;
--   * SET oms_correlation.allow_drop_with_data = on;   DROP EXTENSION deletes the data too.

CREATE FUNCTION @extschema@.oms_guard_drop() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    outages bigint;
    status_events bigint;
BEGIN
    -- ddl_command_start does not say what is dropped; the statement does. DROP EXTENSION naming
    -- this extension, and DROP SCHEMA ... CASCADE naming its schema, would take the tables. A
    -- false positive only asks the DBA to confirm.
    IF current_setting('oms_correlation.allow_drop_with_data', true) IN ('on', 'true', '1') THEN
        RETURN;
    END IF;
    IF tg_tag = 'DROP EXTENSION' AND current_query() !~* 'oms_correlation' THEN
        RETURN;
    END IF;
    IF tg_tag = 'DROP SCHEMA' AND (current_query() !~* 'cascade'
                                   OR position(lower('@extschema@') IN lower(current_query())) = 0) THEN
        RETURN;
    END IF;
    -- Only tables still in the extension would be dropped.
    IF NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                   WHERE e.extname = 'oms_correlation' AND d.classid = 'pg_class'::regclass
                     AND d.objid = to_regclass('oms_outage_events') AND d.deptype = 'e') THEN
        RETURN;
    END IF;
    SELECT count(*) INTO outages FROM oms_outage_events;
    SELECT count(*) INTO status_events FROM oms_meter_status_events;
    IF outages > 0 OR status_events > 0 THEN
        RAISE EXCEPTION 'DROP would delete the oms_correlation tables with % outage records and % meter status events',
                        outages, status_events
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'SELECT oms_keep_data_on_drop(); first keeps the tables, or SET oms_correlation.allow_drop_with_data = on deletes them.';
    END IF;
END
$$;

CREATE EVENT TRIGGER oms_correlation_guard_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION @extschema@.oms_guard_drop();

-- Detaches every data table and sequence from the extension so that DROP EXTENSION leaves them.
-- Their defaults stop calling the extension's uuid function (gen_random_uuid() instead), and the
-- seeded tables lose their restore-merge triggers, which belong to the extension.
CREATE FUNCTION @extschema@.oms_keep_data_on_drop()
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
DECLARE
    member record;
    kept int := 0;
BEGIN
    FOR member IN
        SELECT c.oid::regclass AS rel, c.relkind
        FROM pg_depend d
        JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'oms_correlation'
        JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
        WHERE c.relkind IN ('r', 'p', 'S')
        ORDER BY c.relkind DESC
    LOOP
        IF member.relkind IN ('r', 'p') THEN
            EXECUTE (SELECT coalesce(string_agg(format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT pg_catalog.gen_random_uuid()',
                                              member.rel, a.attname), '; '), 'SELECT 1')
                     FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
                     WHERE ad.adrelid = member.rel AND pg_get_expr(ad.adbin, ad.adrelid) LIKE '%oms_uuid_v7()%');
            EXECUTE (SELECT coalesce(string_agg(format('DROP TRIGGER %I ON %s', t.tgname, member.rel), '; '), 'SELECT 1')
                     FROM pg_trigger t WHERE t.tgrelid = member.rel AND NOT t.tgisinternal);
            EXECUTE format('ALTER EXTENSION oms_correlation DROP TABLE %s', member.rel);
        ELSE
            EXECUTE format('ALTER EXTENSION oms_correlation DROP SEQUENCE %s', member.rel);
        END IF;
        kept := kept + 1;
    END LOOP;
    RETURN kept;
END
$$;
