-- SELECT oms_keep_data_on_drop() (see drop_guard.sql): detaches every data table and sequence from
-- the extension so that DROP EXTENSION leaves them. Their defaults stop calling the extension's
-- uuid function (gen_random_uuid() instead), and they lose the triggers that belong to the
-- extension; the foreign keys it checked once per statement (sql/schema/10_references.sql) get
-- PostgreSQL's own per-row checks back. The registry generation and the outage writers are no data:
-- they go with the extension.
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
        WHERE c.relkind IN ('r', 'p', 'S') AND c.oid <> ALL (ARRAY['@extschema@.oms_registry_generation'::regclass,
                                                                  '@extschema@.oms_outage_writers'::regclass])
        ORDER BY c.relkind DESC
    LOOP
        IF member.relkind IN ('r', 'p') THEN
            EXECUTE (SELECT coalesce(string_agg(format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT pg_catalog.gen_random_uuid()',
                                              member.rel, a.attname), '; '), 'SELECT 1')
                     FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
                     WHERE ad.adrelid = member.rel AND pg_get_expr(ad.adbin, ad.adrelid) LIKE '%oms_uuid_v7()%');
            EXECUTE (SELECT coalesce(string_agg(format('DROP TRIGGER %I ON %s', t.tgname, member.rel), '; '), 'SELECT 1')
                     FROM pg_trigger t WHERE t.tgrelid = member.rel AND NOT t.tgisinternal);
            EXECUTE (SELECT coalesce(string_agg(format('ALTER TABLE %s ENABLE TRIGGER %I', member.rel, t.tgname), '; '),
                                     'SELECT 1')
                     FROM pg_trigger t
                     WHERE t.tgrelid = member.rel AND t.tgisinternal AND t.tgenabled = 'D'
                       AND t.tgfoid IN ('pg_catalog."RI_FKey_check_ins"'::regproc,
                                        'pg_catalog."RI_FKey_check_upd"'::regproc));
            EXECUTE format('ALTER EXTENSION oms_correlation DROP TABLE %s', member.rel);
        ELSE
            EXECUTE format('ALTER EXTENSION oms_correlation DROP SEQUENCE %s', member.rel);
        END IF;
        kept := kept + 1;
    END LOOP;
    RETURN kept;
END
$$;
