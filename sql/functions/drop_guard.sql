-- What DROP EXTENSION does to data (issue 6).
--
-- The tables are members of the extension, so DROP EXTENSION would drop them and every outage
-- record with them. It refuses to while they hold data. A DBA chooses:
--   * SELECT oms_keep_data_on_drop();   the tables (and their sequences) leave the extension and
--                                       survive DROP EXTENSION; a later CREATE EXTENSION adopts
--                                       them again, rows and all;
--   * SET oms_correlation.allow_drop_with_data = on;   (a superuser) DROP EXTENSION deletes the
--                                       data too.

-- What a DROP of the extension would delete: nothing once oms_keep_data_on_drop() has detached
-- the tables.
CREATE FUNCTION @extschema@.oms_data_at_stake(OUT outages bigint, OUT status_events bigint)
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    outages := 0;
    status_events := 0;
    IF EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
               WHERE e.extname = 'oms_correlation' AND d.classid = 'pg_class'::regclass
                 AND d.objid = 'oms_outage_events'::regclass AND d.deptype = 'e') THEN
        SELECT count(*) INTO outages FROM oms_outage_events;
        SELECT count(*) INTO status_events FROM oms_meter_status_events;
    END IF;
END
$$;

-- The guard reads each statement's parse tree (src/api/drop_guard.rs): it refuses a DROP
-- EXTENSION naming this extension, a DROP SCHEMA ... CASCADE of its schema and a DROP OWNED BY its
-- owner while the tables hold data, and lets every other statement through.
-- (Bound to the library pgrx binds the rest of this release to: the control file's module_pathname.)
DO $bind$
BEGIN
    EXECUTE format('CREATE FUNCTION @extschema@.oms_guard_drop() RETURNS event_trigger LANGUAGE c '
                   'SET search_path = @extschema@, pg_catalog, pg_temp AS %L, %L',
                   (SELECT probin FROM pg_catalog.pg_proc WHERE oid = '@extschema@.oms_uuid_v7()'::pg_catalog.regprocedure),
                   'oms_guard_drop_wrapper');
END
$bind$;

CREATE EVENT TRIGGER oms_correlation_guard_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED')
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
