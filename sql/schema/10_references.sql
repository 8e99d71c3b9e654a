-- The foreign keys of the tables the correlator fills (memberships, sources, timeline, customers
-- out) are checked once per statement instead of once per row (issue 21). They stay declared, with
-- their ON DELETE actions, and hold as before: what changes is how a new row's keys are checked.
--
-- PostgreSQL checks a foreign key with one query per inserted row, each planned, started and
-- ended on its own: a storm batch writing 140,000 memberships spent a quarter of its time there.
-- Here the per-row check triggers are disabled and one statement-level trigger per table checks
-- every key the statement wrote in one query per key, locking the rows referred to (FOR KEY SHARE)
-- as the per-row check does, so that a concurrent DELETE of one still waits or fails.
--
-- On UPDATE only the keys the correlator moves in bulk, to an outage (a merge moves thousands of
-- spans), are checked per statement. The others (a span's meter, a customer) keep PostgreSQL's
-- per-row check, which queues nothing for a row whose key did not change (unless this transaction
-- inserted the row: a one-call drain pays one query per such row): checked per statement, every
-- meter of every updated span was locked again, for keys no row changed.
--
-- A dump restored with plain CREATE EXTENSION gets this again; a foreign key added by hand later
-- keeps PostgreSQL's own per-row check.

-- Raises foreign_key_violation as PostgreSQL does when a key of the statement's new rows names no
-- row. Arguments, three per key: column, referenced table, constraint. An UPDATE checks every key
-- its new rows hold: PostgreSQL checks only the keys a row changed, which a statement-level
-- trigger cannot tell apart (rows cannot be paired across the old and new tables), so it locks a
-- little more than PostgreSQL would, never less. Runs as the extension's owner, as PostgreSQL's
-- checks run as the table's: locking a row needs rights that a role that may only insert lacks.
--
-- The planner knows how many rows `new_rows` holds but not how many distinct keys (no statistics:
-- it guesses 200), so it looks each key up in the referenced table's index, however many there
-- are. Where there are four keys or more per page of that table (a backlog's memberships name most
-- meters), one pass over it with a hash of the keys is cheaper: 0.6 s against 1.4 s for 114,000 of
-- 161,000 meters (5,358 pages); they break even near 2 keys a page. Measured by its size now: a
-- first rule on a tenth of pg_class.reltuples had a storm batch's 2,100 meters read by a whole
-- pass, 155 ms against 28 ms (reltuples most likely read low while the storm ran). The switch
-- ends with the call because the function's SET clause names enable_nestloop: PostgreSQL restores
-- at exit only the settings a SET clause names, and keeps any other set here for the transaction.
CREATE FUNCTION @extschema@.oms_check_references() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_catalog, pg_temp SET work_mem = '64MB'
SET enable_nestloop = on AS $$
DECLARE
    i int := 0;
    key_column text;
    referenced regclass;
    new_keys text;
    wanted bigint;
    found bigint;
    missing text;
BEGIN
    WHILE i + 2 < TG_NARGS LOOP
        key_column := TG_ARGV[i];
        referenced := TG_ARGV[i + 1]::regclass;
        new_keys := format('SELECT DISTINCT %I AS k FROM new_rows', key_column);
        EXECUTE format('SELECT count(k) FROM (%s) AS n', new_keys) INTO wanted;
        IF wanted > 0 THEN
            PERFORM pg_catalog.set_config('enable_nestloop',
                CASE WHEN wanted >= 4 * pg_catalog.pg_relation_size(referenced)
                                    / pg_catalog.current_setting('block_size')::int
                     THEN 'off' ELSE 'on' END, true);
            EXECUTE format('SELECT count(*) FROM (SELECT FROM %s r WHERE r.id IN (SELECT k FROM (%s) AS n) '
                           'FOR KEY SHARE OF r) AS locked', referenced, new_keys) INTO found;
            IF found < wanted THEN
                EXECUTE format('SELECT n.k::text FROM (%s) AS n WHERE n.k IS NOT NULL '
                               'AND NOT EXISTS (SELECT FROM %s r WHERE r.id = n.k) LIMIT 1',
                               new_keys, referenced) INTO missing;
                RAISE foreign_key_violation USING
                    MESSAGE = format('insert or update on table "%s" violates foreign key constraint "%s"',
                                     TG_TABLE_NAME, TG_ARGV[i + 2]),
                    DETAIL = format('Key (%s)=(%s) is not present in table "%s".', key_column, missing,
                                    (SELECT c.relname FROM pg_class c WHERE c.oid = referenced)),
                    TABLE = TG_TABLE_NAME, CONSTRAINT = TG_ARGV[i + 2];
            END IF;
        END IF;
        i := i + 3;
    END LOOP;
    RETURN NULL;
END
$$;
-- Only the owner makes triggers with it (firing one needs no right).
REVOKE ALL ON FUNCTION @extschema@.oms_check_references() FROM PUBLIC;

-- Moves the checks of `target`'s single-column foreign keys to a referenced `id` onto
-- `oms_check_references`: their per-row check triggers disabled, the statement-level ones made
-- (again). On UPDATE, only keys to an outage move; the others' per-row update checks are enabled.
-- Idempotent. Other foreign keys keep PostgreSQL's per-row check.
CREATE FUNCTION @extschema@.oms_check_references_per_statement(target regclass) RETURNS void
LANGUAGE plpgsql SET search_path = @extschema@, pg_catalog, pg_temp AS $$
DECLARE
    fk record;
    key_args text;
    inserted text[] := '{}';
    updated text[] := '{}';
    disable name[] := '{}';
    enable name[] := '{}';
BEGIN
    FOR fk IN
        SELECT c.conname, a.attname, c.confrelid::regclass AS referenced,
               c.confrelid = '@extschema@.oms_outage_events'::regclass AS moved_in_bulk,
               ARRAY(SELECT t.tgname FROM pg_trigger t
                     WHERE t.tgconstraint = c.oid AND t.tgrelid = target
                       AND t.tgfoid = 'pg_catalog."RI_FKey_check_ins"'::regproc) AS insert_checks,
               ARRAY(SELECT t.tgname FROM pg_trigger t
                     WHERE t.tgconstraint = c.oid AND t.tgrelid = target
                       AND t.tgfoid = 'pg_catalog."RI_FKey_check_upd"'::regproc) AS update_checks
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = c.confkey[1]
        WHERE c.conrelid = target AND c.contype = 'f' AND cardinality(c.conkey) = 1 AND r.attname = 'id'
        ORDER BY c.conname
    LOOP
        key_args := format('%L, %L, %L', fk.attname, fk.referenced::text, fk.conname);
        inserted := inserted || key_args;
        disable := disable || fk.insert_checks;
        IF fk.moved_in_bulk THEN
            updated := updated || key_args;
            disable := disable || fk.update_checks;
        ELSE
            enable := enable || fk.update_checks;
        END IF;
    END LOOP;
    IF cardinality(inserted) = 0 THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE OR REPLACE TRIGGER oms_references_inserted AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                   'EXECUTE FUNCTION @extschema@.oms_check_references(%s)', target,
                   array_to_string(inserted, ', '));
    IF cardinality(updated) = 0 THEN
        EXECUTE format('DROP TRIGGER IF EXISTS oms_references_updated ON %s', target);
    ELSE
        EXECUTE format('CREATE OR REPLACE TRIGGER oms_references_updated AFTER UPDATE ON %s '
                       'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION @extschema@.oms_check_references(%s)', target,
                       array_to_string(updated, ', '));
    END IF;
    FOR i IN 1 .. coalesce(cardinality(disable), 0) LOOP
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', target, disable[i]);
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(enable), 0) LOOP
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', target, enable[i]);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.oms_check_references_per_statement(regclass) FROM PUBLIC;

SELECT @extschema@.oms_check_references_per_statement(t)
FROM unnest(ARRAY['@extschema@.oms_outage_meters', '@extschema@.oms_event_sources',
                  '@extschema@.oms_event_timeline', '@extschema@.oms_outage_customers']::regclass[]) AS t;
