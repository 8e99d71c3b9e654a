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
