-- Finishing an adoption (README, "Adopting a legacy database"). CREATE EXTENSION adopts a legacy
-- database in seconds because it rewrites nothing; what a rewrite would take is left to this
-- procedure, which a DBA runs afterwards, online, in committed steps with progress notices:
--
--   CALL oms_finish_adoption();
--
--   1. legacy timeline entries and sources get the operations API's column values (event_description,
--      event_timestamp, status; event_timestamp, confidence_weight), in batches of batch_rows;
--   2. each hash-partitioned legacy table (kaifa_events, kaifa_event_payloads) becomes a plain
--      table of the extension's shape: a copy fed in batches while a trigger mirrors the writes
--      consumers make meanwhile, then a swap under a short lock (keys, indexes, triggers, grants,
--      the views that read it, foreign keys from and to it), then the foreign keys validated
--      without blocking writes.
-- Afterwards pg_dump / pg_restore restores the database whole, as it does a fresh install. Run it
-- again after an interruption: every step picks up where it stopped. On a database that needs
-- nothing it does nothing. It needs a superuser, as CREATE EXTENSION does.
--
-- A procedure that commits cannot have a SET clause, so it pins no search_path: every name in it
-- is qualified (the #[pg_test] on pinned search paths names it as the one exception).
CREATE PROCEDURE @extschema@.oms_finish_adoption(batch_rows integer DEFAULT 20000)
LANGUAGE plpgsql
AS $procedure$
DECLARE
    home constant text := (SELECT n.nspname FROM pg_catalog.pg_namespace n
                           JOIN pg_catalog.pg_extension e ON e.extnamespace = n.oid WHERE e.extname = 'oms_correlation');
    step record;
    last_id uuid;
    upper_id uuid;
    done bigint;
    total bigint;
    moved bigint;
BEGIN
    -- 1. The operations API's columns on rows written before the extension.
    FOR step IN
        SELECT * FROM (VALUES
            ('oms_event_timeline',
             'event_description = coalesce(event_description, description), '
             'event_timestamp = coalesce(event_timestamp, "timestamp"), '
             'status = coalesce(status, (SELECT o.status FROM %1$I.oms_outage_events o WHERE o.id = outage_event_id))',
             'event_timestamp IS NULL OR event_description IS DISTINCT FROM description OR status IS NULL'),
            ('oms_event_sources',
             'event_timestamp = coalesce(event_timestamp, detected_at), '
             'confidence_weight = coalesce(confidence_weight, correlation_weight)',
             'event_timestamp IS NULL OR (confidence_weight IS NULL AND correlation_weight IS NOT NULL)')) AS s(table_name, assignments, needs)
    LOOP
        EXECUTE format('SELECT count(*) FROM %I.%I WHERE %s', home, step.table_name, step.needs) INTO total;
        CONTINUE WHEN total = 0;
        last_id := '00000000-0000-0000-0000-000000000000';
        done := 0;
        LOOP
            EXECUTE format('SELECT (array_agg(id ORDER BY id DESC))[1] FROM (SELECT id FROM %I.%I WHERE id > $1 ORDER BY id LIMIT $2) AS batch',
                           home, step.table_name) INTO upper_id USING last_id, batch_rows;
            EXIT WHEN upper_id IS NULL;
            EXECUTE format('UPDATE %2$I.%3$I SET ' || step.assignments || ' WHERE id > $1 AND id <= $2 AND (%4$s)',
                           home, home, step.table_name, step.needs) USING last_id, upper_id;
            GET DIAGNOSTICS moved = ROW_COUNT;
            done := done + moved;
            last_id := upper_id;
            COMMIT;
            RAISE NOTICE 'oms_finish_adoption: %: % of % rows filled in', step.table_name, done, total;
        END LOOP;
    END LOOP;

    -- 2. The partitioned legacy tables, messages first (their payloads refer to them).
    FOR step IN
        SELECT c.relname::text AS table_name FROM pg_catalog.pg_class c
        WHERE c.relnamespace = home::regnamespace AND c.relname IN ('kaifa_events', 'kaifa_event_payloads')
          AND c.relkind = 'p'
        ORDER BY c.relname = 'kaifa_events' DESC
    LOOP
        CALL @extschema@.oms_unpartition(step.table_name, batch_rows);
    END LOOP;
END
$procedure$;

-- Mirrors a row written to a table being unpartitioned into its copy (TG_ARGV: the copy, and the
-- SET list of an upsert of all its columns).
CREATE FUNCTION @extschema@.oms_mirror_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        EXECUTE format('DELETE FROM %s WHERE id = $1', TG_ARGV[0]) USING OLD.id;
    ELSE
        EXECUTE format('INSERT INTO %s SELECT ($1).* ON CONFLICT (id) DO UPDATE SET %s', TG_ARGV[0], TG_ARGV[1])
            USING NEW;
    END IF;
    RETURN NULL;
END
$$;

-- One partitioned table into a plain one (step 2 of oms_finish_adoption).
CREATE PROCEDURE @extschema@.oms_unpartition(table_name text, batch_rows integer)
LANGUAGE plpgsql
AS $procedure$
DECLARE
    home constant text := (SELECT n.nspname FROM pg_catalog.pg_namespace n
                           JOIN pg_catalog.pg_extension e ON e.extnamespace = n.oid WHERE e.extname = 'oms_correlation');
    copy_name constant text := 'oms_unpartitioned_' || table_name;
    original regclass;
    copy_rel regclass;
    part record;
    item record;
    last_id uuid;
    upper_id uuid;
    done bigint := 0;
    total bigint;
    copied bigint;
    acl aclitem[];
    upsert text;
    references_in text[];
    references_out text[];
    triggers text[];
    indexes text[];
    views jsonb;
BEGIN
    original := format('%I.%I', home, table_name)::regclass;
    -- a. The copy, and the mirror that keeps it up with writes from now on (an interrupted run
    --    finds both and goes on).
    IF to_regclass(format('%I.%I', home, copy_name)) IS NULL THEN
        EXECUTE format('CREATE TABLE %1$I.%2$I (LIKE %3$s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                       home, copy_name, original);
        EXECUTE format('ALTER TABLE %I.%I ADD PRIMARY KEY (id)', home, copy_name);
        SELECT string_agg(format('%1$I = EXCLUDED.%1$I', a.attname), ', ' ORDER BY a.attnum) INTO upsert
        FROM pg_catalog.pg_attribute a WHERE a.attrelid = original AND a.attnum > 0 AND NOT a.attisdropped;
        EXECUTE format('CREATE TRIGGER oms_mirror_to_copy AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION %I.oms_mirror_row(%L, %L)',
                       original, home, format('%I.%I', home, copy_name), upsert);
    END IF;
    copy_rel := format('%I.%I', home, copy_name)::regclass;
    COMMIT;

    -- b. The rows already there, a batch at a time, partition by partition in key order.
    EXECUTE format('SELECT count(*) FROM %s', original) INTO total;
    FOR part IN SELECT i.inhrelid::regclass AS rel FROM pg_catalog.pg_inherits i WHERE i.inhparent = original LOOP
        last_id := '00000000-0000-0000-0000-000000000000';
        LOOP
            EXECUTE format('SELECT (array_agg(id ORDER BY id DESC))[1] FROM (SELECT id FROM %s WHERE id > $1 ORDER BY id LIMIT $2) AS batch', part.rel)
                INTO upper_id USING last_id, batch_rows;
            EXIT WHEN upper_id IS NULL;
            EXECUTE format('INSERT INTO %s SELECT * FROM %s WHERE id > $1 AND id <= $2 ON CONFLICT (id) DO NOTHING',
                           copy_rel, part.rel) USING last_id, upper_id;
            GET DIAGNOSTICS copied = ROW_COUNT;
            done := done + copied;
            last_id := upper_id;
            COMMIT;
            RAISE NOTICE 'oms_finish_adoption: %: % of % rows copied', table_name, done, total;
        END LOOP;
    END LOOP;

    -- c. The swap, under one lock of the table and every table whose keys point at it (those
    --    first, the order a consumer's insert takes them).
    EXECUTE (SELECT 'LOCK TABLE ' || string_agg(rel, ', ' ORDER BY ord) || ' IN ACCESS EXCLUSIVE MODE'
             FROM (SELECT DISTINCT k.conrelid::regclass::text AS rel, 0 AS ord FROM pg_catalog.pg_constraint k
                   WHERE k.confrelid = original AND k.contype = 'f' AND k.conparentid = 0 AND k.conrelid <> original
                   UNION ALL SELECT original::text, 1) AS locked);
    EXECUTE format('INSERT INTO %s SELECT * FROM %s ON CONFLICT (id) DO NOTHING', copy_rel, original);
    EXECUTE format('SELECT (SELECT count(*) FROM %s) - (SELECT count(*) FROM %s)', original, copy_rel) INTO copied;
    IF copied <> 0 THEN
        RAISE EXCEPTION 'oms_finish_adoption: % and its copy differ by % rows; nothing was swapped', table_name, copied;
    END IF;

    -- What the table carries that the copy must carry too.
    SELECT c.relacl INTO acl FROM pg_catalog.pg_class c WHERE c.oid = original;
    -- (A key from a partitioned table cannot be added NOT VALID: it is checked at once.)
    SELECT coalesce(array_agg(format('ALTER TABLE %s ADD CONSTRAINT %I %s%s', k.conrelid::regclass, k.conname,
                                     pg_catalog.pg_get_constraintdef(k.oid),
                                     CASE WHEN c.relkind = 'p' THEN '' ELSE ' NOT VALID' END)), '{}')
        INTO references_in
    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
    WHERE k.confrelid = original AND k.contype = 'f' AND k.conparentid = 0 AND k.conrelid <> original;
    SELECT coalesce(array_agg(format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s NOT VALID', home, table_name, k.conname,
                                     pg_catalog.pg_get_constraintdef(k.oid))), '{}')
        INTO references_out
    FROM pg_catalog.pg_constraint k WHERE k.conrelid = original AND k.contype = 'f' AND k.conparentid = 0;
    SELECT coalesce(array_agg(pg_catalog.pg_get_triggerdef(t.oid)), '{}') INTO triggers
    FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid = original AND NOT t.tgisinternal AND t.tgparentid = 0 AND t.tgname <> 'oms_mirror_to_copy';
    SELECT coalesce(array_agg(replace(pg_catalog.pg_get_indexdef(x.indexrelid), ' ON ONLY ', ' ON ')), '{}') INTO indexes
    FROM pg_catalog.pg_index x
    WHERE x.indrelid = original AND NOT x.indisprimary
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid);
    -- The views that read it, with the views on them, shallowest first.
    WITH RECURSIVE dependent AS (
        SELECT DISTINCT r.ev_class AS view, 1 AS depth FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::regclass
        WHERE d.refobjid = original AND r.ev_class <> original
        UNION
        SELECT r.ev_class, dependent.depth + 1 FROM dependent
        JOIN pg_catalog.pg_depend d ON d.refobjid = dependent.view
        JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::regclass
        WHERE r.ev_class <> dependent.view AND dependent.depth < 20
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'name', v.view::regclass::text, 'kind', c.relkind, 'definition', pg_catalog.pg_get_viewdef(v.view),
               'acl', coalesce(c.relacl::text[], '{}'), 'owner', c.relowner::regrole::text,
               'member', EXISTS (SELECT FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::regclass
                                 AND e.objid = v.view AND e.deptype = 'e'))
             ORDER BY v.depth), '[]')
        INTO views
    FROM (SELECT view, max(depth) AS depth FROM dependent GROUP BY view) AS v
    JOIN pg_catalog.pg_class c ON c.oid = v.view;

    FOR item IN SELECT * FROM jsonb_array_elements(views) WITH ORDINALITY AS v(view, n) ORDER BY n DESC LOOP
        IF (item.view ->> 'member')::boolean THEN
            EXECUTE format('ALTER EXTENSION oms_correlation DROP VIEW %s', item.view ->> 'name');
        END IF;
        EXECUTE format('DROP %s %s', CASE item.view ->> 'kind' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                       item.view ->> 'name');
    END LOOP;
    FOR item IN
        SELECT k.conrelid::regclass AS rel, k.conname FROM pg_catalog.pg_constraint k
        WHERE k.confrelid = original AND k.contype = 'f' AND k.conparentid = 0 AND k.conrelid <> original
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', item.rel, item.conname);
    END LOOP;

    -- The partitioned table goes (every row is in the copy); the copy takes its name and place.
    EXECUTE format('ALTER EXTENSION oms_correlation DROP TABLE %s', original);
    EXECUTE format('DROP TABLE %s', original);
    EXECUTE format('ALTER TABLE %I.%I RENAME TO %I', home, copy_name, table_name);
    EXECUTE format('ALTER TABLE %I.%I RENAME CONSTRAINT %I TO %I', home, table_name, copy_name || '_pkey',
                   table_name || '_pkey');
    EXECUTE format('DROP TRIGGER IF EXISTS oms_mirror_to_copy ON %I.%I', home, table_name);
    EXECUTE format('ALTER EXTENSION oms_correlation ADD TABLE %I.%I', home, table_name);
    -- pg_extension_config_dump() works only inside CREATE EXTENSION; this is what it records (a
    -- superuser's catalog update, as CREATE EXTENSION of this extension needs a superuser anyway).
    UPDATE pg_catalog.pg_extension
    SET extconfig = pg_catalog.array_append(extconfig, format('%I.%I', home, table_name)::regclass::oid),
        extcondition = pg_catalog.array_append(extcondition, '')
    WHERE extname = 'oms_correlation';
    FOREACH upsert IN ARRAY indexes || triggers || references_out || references_in LOOP
        EXECUTE upsert;
    END LOOP;
    -- The key the partitioning forbade (adoption made it a plain index).
    IF table_name = 'kaifa_events' THEN
        EXECUTE format('ALTER TABLE %I.kaifa_events ADD CONSTRAINT kaifa_events_delivery_key_key UNIQUE (delivery_key)',
                       home);
        EXECUTE format('DROP INDEX IF EXISTS %I.kaifa_events_delivery_key_idx', home);
    END IF;
    FOR item IN SELECT a.privilege_type, a.grantee, a.is_grantable FROM pg_catalog.aclexplode(acl) AS a LOOP
        EXECUTE format('GRANT %s ON %I.%I TO %s%s', item.privilege_type, home, table_name,
                       CASE WHEN item.grantee = 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END,
                       CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    FOR item IN SELECT * FROM jsonb_array_elements(views) WITH ORDINALITY AS v(view, n) ORDER BY n LOOP
        EXECUTE format('CREATE %s %s AS %s', CASE item.view ->> 'kind' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                       item.view ->> 'name', item.view ->> 'definition');
        EXECUTE format('ALTER %s %s OWNER TO %s', CASE item.view ->> 'kind' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                       item.view ->> 'name', item.view ->> 'owner');
        IF (item.view ->> 'member')::boolean THEN
            EXECUTE format('ALTER EXTENSION oms_correlation ADD VIEW %s', item.view ->> 'name');
        END IF;
        CONTINUE WHEN jsonb_array_length(item.view -> 'acl') = 0;
        FOR part IN
            SELECT a.privilege_type, a.grantee, a.is_grantable
            FROM pg_catalog.aclexplode(ARRAY(SELECT jsonb_array_elements_text(item.view -> 'acl'))::aclitem[]) AS a
        LOOP
            EXECUTE format('GRANT %s ON %s TO %s', part.privilege_type, item.view ->> 'name',
                           CASE WHEN part.grantee = 0 THEN 'PUBLIC' ELSE part.grantee::regrole::text END);
        END LOOP;
    END LOOP;
    COMMIT;
    RAISE NOTICE 'oms_finish_adoption: % is a plain table of % rows', table_name, total;

    -- d. The keys, checked against the rows without holding up writes.
    FOR item IN
        SELECT k.conrelid::regclass AS rel, k.conname FROM pg_catalog.pg_constraint k
        WHERE NOT k.convalidated AND k.contype = 'f' AND k.conparentid = 0
          AND (k.confrelid = format('%I.%I', home, table_name)::regclass
               OR k.conrelid = format('%I.%I', home, table_name)::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', item.rel, item.conname);
        COMMIT;
    END LOOP;
END
$procedure$;
