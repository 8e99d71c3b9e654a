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
