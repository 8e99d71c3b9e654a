-- Adopting a legacy database, step 2 of 3: runs once the extension's tables exist, before the
-- functions and views that read them (see 1_set_aside.sql for the whole plan).
--
-- For each legacy table set aside, the extension's freshly made (and so empty) table of that name
-- gives way to it. The legacy table then gains what our definition has and it lacks: columns,
-- defaults, NOT NULL, keys, checks, foreign keys, indexes, triggers. Nothing of the legacy table
-- is dropped or rewritten:
--   - columns are added with their default only when it is not volatile (a stored "missing"
--     value, no rewrite); volatile defaults (new ids) apply to new rows only;
--   - varchar columns narrower than ours are widened, which PostgreSQL does in the catalog alone;
--   - a NOT NULL the legacy rows break is not added; checks and foreign keys they break are added
--     NOT VALID, so they hold for new rows; each is reported as a WARNING;
--   - a unique key the legacy rows break stops the install (correlation relies on those keys),
--     naming the table and the key; on a hash-partitioned table a key that cannot include the
--     partition key becomes a plain index (the Kaifa delivery key: see src/db/store/kaifa.rs).
DO $take_in$
DECLARE
    home_ns constant regnamespace := '@extschema@'::regnamespace;
    home constant text := (SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = '@extschema@'::regnamespace);
    holding constant regnamespace := to_regnamespace('oms_correlation_adoption');
    adopted text[];
    t text;
    col record;
    con record;
    ix record;
    tg record;
    legacy_type text;
    new_name text;
    has_rows boolean;
    widened text[] := '{}';
    kept text[] := '{}';
BEGIN
    IF holding IS NULL THEN
        RETURN;  -- a fresh database
    END IF;
    SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}') INTO adopted
    FROM pg_class c
    WHERE c.relnamespace = holding AND c.relkind IN ('r', 'p')
      AND EXISTS (SELECT FROM pg_class ours WHERE ours.relnamespace = home_ns AND ours.relname = c.relname);

    -- 1. What our tables are, read from the catalog before they go.
    CREATE TABLE oms_correlation_adoption.our_columns AS
    SELECT c.relname::text AS table_name, a.attname::text AS column_name, a.attnum,
           format_type(a.atttypid, a.atttypmod) AS column_type, a.atttypid, a.atttypmod, a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid) AS default_expr
    FROM pg_class c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
    WHERE c.relnamespace = home_ns AND c.relname = ANY (adopted);

    -- Every constraint of every table of ours, so foreign keys that pointed at a replaced table
    -- are made again, now pointing at the adopted one.
    CREATE TABLE oms_correlation_adoption.our_constraints AS
    SELECT c.relname::text AS table_name, k.conname::text AS constraint_name, k.contype,
           pg_get_constraintdef(k.oid) AS definition,
           oms_correlation_adoption.column_names(k.conrelid, k.conkey) AS columns,
           r.relname::text AS referenced_table,
           oms_correlation_adoption.column_names(k.confrelid, k.confkey) AS referenced_columns
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    LEFT JOIN pg_class r ON r.oid = k.confrelid
    WHERE c.relnamespace = home_ns AND k.contype IN ('p', 'u', 'c', 'f')
      AND (c.relname = ANY (adopted) OR r.relname = ANY (adopted));

    CREATE TABLE oms_correlation_adoption.our_indexes AS
    SELECT c.relname::text AS table_name, i.relname::text AS index_name, x.indisunique,
           pg_get_indexdef(x.indexrelid) AS definition,
           oms_correlation_adoption.column_names(x.indrelid, x.indkey::int2[]) AS columns,
           x.indexprs IS NOT NULL AS on_expressions
    FROM pg_index x
    JOIN pg_class c ON c.oid = x.indrelid
    JOIN pg_class i ON i.oid = x.indexrelid
    WHERE c.relnamespace = home_ns AND c.relname = ANY (adopted)
      AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid);

    CREATE TABLE oms_correlation_adoption.our_triggers AS
    SELECT c.relname::text AS table_name, g.tgname::text AS trigger_name, pg_get_triggerdef(g.oid) AS definition
    FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
    WHERE c.relnamespace = home_ns AND c.relname = ANY (adopted) AND NOT g.tgisinternal;

    -- Seeded rows (rules, storm mode, vocabulary) go only into adopted tables that arrive empty:
    -- a legacy table with rows holds the utility's own settings.
    CREATE TABLE oms_correlation_adoption.our_seed_rows (table_name text, row_data jsonb);
    FOREACH t IN ARRAY adopted LOOP
        EXECUTE format('INSERT INTO oms_correlation_adoption.our_seed_rows SELECT %L, to_jsonb(s) FROM %I.%I s',
                       t, home, t);
    END LOOP;

    -- 2. Our empty tables give way. Leaving the extension first also takes them off
    -- pg_extension_config_dump's list.
    FOREACH t IN ARRAY adopted LOOP
        FOR col IN
            SELECT s.oid::regclass AS seq FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            WHERE d.refobjid = format('%I.%I', home, t)::regclass AND d.deptype = 'a'
        LOOP
            EXECUTE format('ALTER EXTENSION oms_correlation DROP SEQUENCE %s', col.seq);
        END LOOP;
        EXECUTE format('ALTER EXTENSION oms_correlation DROP TABLE %I.%I', home, t);
    END LOOP;
    IF cardinality(adopted) > 0 THEN
        EXECUTE 'DROP TABLE ' || (SELECT string_agg(format('%I.%I', home, a), ', ') FROM unnest(adopted) a) || ' CASCADE';
    END IF;

    -- 3. The legacy tables come back, as members of the extension.
    FOREACH t IN ARRAY adopted LOOP
        EXECUTE format('ALTER TABLE oms_correlation_adoption.%I SET SCHEMA %I', t, home);
        EXECUTE format('ALTER EXTENSION oms_correlation ADD TABLE %I.%I', home, t);
        FOR col IN
            SELECT s.oid::regclass AS seq FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            WHERE d.refobjid = format('%I.%I', home, t)::regclass AND d.deptype IN ('a', 'i')
        LOOP
            EXECUTE format('ALTER EXTENSION oms_correlation ADD SEQUENCE %s', col.seq);
            PERFORM pg_catalog.pg_extension_config_dump(col.seq, '');
        END LOOP;
        PERFORM pg_catalog.pg_extension_config_dump(format('%I.%I', home, t)::regclass, '');
    END LOOP;

    -- 4. Columns: what is missing, too narrow, or without our default.
    FOR col IN SELECT * FROM oms_correlation_adoption.our_columns ORDER BY table_name, attnum LOOP
        SELECT format_type(a.atttypid, a.atttypmod) INTO legacy_type
        FROM pg_attribute a
        WHERE a.attrelid = format('%I.%I', home, col.table_name)::regclass AND a.attname = col.column_name
          AND NOT a.attisdropped;
        IF legacy_type IS NULL THEN
            IF col.default_expr IS NOT NULL AND col.default_expr !~ '(oms_uuid_v7|nextval)\(' THEN
                EXECUTE format('ALTER TABLE %I.%I ADD COLUMN %I %s DEFAULT %s%s', home, col.table_name,
                               col.column_name, col.column_type, col.default_expr,
                               CASE WHEN col.attnotnull THEN ' NOT NULL' ELSE '' END);
                CONTINUE;
            END IF;
            EXECUTE format('ALTER TABLE %I.%I ADD COLUMN %I %s', home, col.table_name, col.column_name, col.column_type);
        ELSIF legacy_type <> col.column_type THEN
            CASE oms_correlation_adoption.type_relation(legacy_type, col.column_type)
            WHEN 'in_place' THEN
                BEGIN
                    EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I TYPE %s', home, col.table_name,
                                   col.column_name, col.column_type);
                    widened := widened || format('%s.%s (%s to %s)', col.table_name, col.column_name, legacy_type,
                                                 col.column_type);
                EXCEPTION WHEN feature_not_supported THEN
                    -- A DBA's view reads the column; longer values will be refused, not lost.
                    RAISE WARNING 'oms_correlation adoption: %.% stays % (%)', col.table_name, col.column_name,
                        legacy_type, SQLERRM;
                END;
            WHEN 'keep' THEN
                kept := kept || format('%s.%s (%s, for %s)', col.table_name, col.column_name, legacy_type,
                                       col.column_type);
            ELSE
                -- Converted only if every value comes back unchanged from the new type.
                BEGIN
                    EXECUTE format('SELECT NOT EXISTS (SELECT FROM %1$I.%2$I WHERE %3$I IS NOT NULL '
                                   'AND %3$I::%4$s::%5$s IS DISTINCT FROM %3$I)', home, col.table_name,
                                   col.column_name, col.column_type, legacy_type)
                        INTO has_rows;
                EXCEPTION WHEN OTHERS THEN
                    has_rows := false;
                END;
                IF NOT has_rows THEN
                    RAISE EXCEPTION 'cannot adopt %.%: the column is % and the extension needs %, and not every value '
                                    'converts unchanged', col.table_name, col.column_name, legacy_type, col.column_type
                        USING HINT = 'Convert the column, then run CREATE EXTENSION oms_correlation again.';
                END IF;
                EXECUTE format('ALTER TABLE %1$I.%2$I ALTER COLUMN %3$I TYPE %4$s USING %3$I::%4$s', home,
                               col.table_name, col.column_name, col.column_type);
                RAISE WARNING 'oms_correlation adoption: %.% converted from % to %; every value kept',
                    col.table_name, col.column_name, legacy_type, col.column_type;
            END CASE;
        END IF;
        -- Our default replaces a missing one and uuid-ossp's (the extension needs no other extension).
        IF col.default_expr IS NOT NULL AND NOT EXISTS (
            SELECT FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
            WHERE d.adrelid = format('%I.%I', home, col.table_name)::regclass AND a.attname = col.column_name
              AND pg_get_expr(d.adbin, d.adrelid) !~ '(uuid_generate_v[14]|gen_random_uuid)\(') THEN
            EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I SET DEFAULT %s', home, col.table_name,
                           col.column_name, col.default_expr);
        END IF;
        IF col.attnotnull AND NOT EXISTS (
            SELECT FROM pg_attribute a WHERE a.attrelid = format('%I.%I', home, col.table_name)::regclass
              AND a.attname = col.column_name AND a.attnotnull) THEN
            EXECUTE format('SELECT EXISTS (SELECT FROM %I.%I WHERE %I IS NULL)', home, col.table_name, col.column_name)
                INTO has_rows;
            IF has_rows THEN
                RAISE WARNING 'oms_correlation adoption: %.% has NULLs, so it stays nullable', col.table_name, col.column_name;
            ELSE
                EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I SET NOT NULL', home, col.table_name, col.column_name);
            END IF;
        END IF;
    END LOOP;

    -- (Extension scripts run with client_min_messages at WARNING: a NOTICE would never be seen.)
    IF cardinality(widened) > 0 THEN
        RAISE WARNING 'oms_correlation adoption: widened in place, without a rewrite: %', array_to_string(widened, ', ');
    END IF;
    IF cardinality(kept) > 0 THEN
        RAISE WARNING 'oms_correlation adoption: kept, as they already hold what the extension writes: %',
            array_to_string(kept, ', ');
    END IF;

    -- The extension writes NULL where its own columns are nullable (a message without a
    -- message_type, an alarm without a feeder, a crew assignment the operations API made without a
    -- crew_id), so a legacy NOT NULL there would turn good events into quarantined ones. It is
    -- lifted, except on primary-key columns; legacy-only NOT NULL columns without a default
    -- (which no insert of ours fills) too.
    FOR col IN
        SELECT c.relname, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) AS columns,
               string_agg(format('ALTER COLUMN %I DROP NOT NULL', a.attname), ', ' ORDER BY a.attnum) AS alter_list
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
        LEFT JOIN oms_correlation_adoption.our_columns o ON o.table_name = c.relname AND o.column_name = a.attname
        WHERE c.relnamespace = home_ns AND c.relname = ANY (adopted)
          AND NOT coalesce(o.attnotnull, a.atthasdef)
          AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'
                          AND a.attnum = ANY (k.conkey))
        GROUP BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE %I.%I %s', home, col.relname, col.alter_list);
        RAISE WARNING 'oms_correlation adoption: % (%) now take NULL, as the extension''s columns do', col.relname,
            col.columns;
    END LOOP;

    -- SPEC §3: real producers repeat these values (intake ids built from the milliseconds, empty ONU
    -- serials), so a legacy unique key on one would refuse good events. It becomes a plain index.
    FOR con IN
        SELECT c.relname, k.conname, a.attname
        FROM (VALUES ('callcenter_tickets', 'intake_id'), ('callcenter_tickets', 'oms_event_id'),
                     ('onus', 'onu_serial_no')) AS repeated(table_name, column_name)
        JOIN pg_class c ON c.relnamespace = home_ns AND c.relname = repeated.table_name
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = repeated.column_name
        JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'u' AND k.conkey = ARRAY[a.attnum]
    LOOP
        EXECUTE format('ALTER TABLE %I.%I DROP CONSTRAINT %I', home, con.relname, con.conname);
        IF NOT EXISTS (SELECT FROM pg_index x WHERE x.indrelid = format('%I.%I', home, con.relname)::regclass
                       AND oms_correlation_adoption.column_names(x.indrelid, x.indkey::int2[]) = ARRAY[con.attname::text]) THEN
            EXECUTE format('CREATE INDEX %I ON %I.%I (%I)', left(con.relname || '_' || con.attname, 59) || '_idx', home,
                           con.relname, con.attname);
        END IF;
        RAISE WARNING 'oms_correlation adoption: %.% is no longer unique (producers repeat it, SPEC §3); it stays indexed',
            con.relname, con.attname;
    END LOOP;

    -- pg_dump saves an extension's tables as rows for the tables a fresh CREATE EXTENSION makes:
    -- a column only the legacy table has, or its partitions, would not restore (README).
    FOR col IN
        SELECT c.relname, a.attname FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relnamespace = home_ns AND c.relname = ANY (adopted)
          AND NOT EXISTS (SELECT FROM oms_correlation_adoption.our_columns o
                          WHERE o.table_name = c.relname AND o.column_name = a.attname)
    LOOP
        RAISE WARNING 'oms_correlation adoption: %.% is the legacy table''s own: kept, but pg_dump cannot restore it '
                      'into a fresh install (back up with pg_basebackup, or move the column out)', col.relname, col.attname;
    END LOOP;

    FOR col IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = home_ns AND c.relname = ANY (adopted)
                                                     AND c.relkind = 'p' LOOP
        RAISE WARNING 'oms_correlation adoption: % is partitioned: kept, but pg_dump cannot restore its rows into a '
                      'fresh install (back up with pg_basebackup)', col.relname;
    END LOOP;

    -- Ids of legacy-only columns too: the extension needs no uuid-ossp.
    FOR col IN
        SELECT c.relname, a.attname FROM pg_attrdef d
        JOIN pg_class c ON c.oid = d.adrelid AND c.relnamespace = home_ns AND c.relname = ANY (adopted)
        JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum AND a.atttypid = 'uuid'::regtype
        WHERE pg_get_expr(d.adbin, d.adrelid) ~ 'uuid_generate_v[14]\('
          AND NOT EXISTS (SELECT FROM oms_correlation_adoption.our_columns o
                          WHERE o.table_name = c.relname AND o.column_name = a.attname)
    LOOP
        EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I SET DEFAULT %I.oms_uuid_v7()', home, col.relname,
                       col.attname, home);
    END LOOP;

    -- 5. Keys, checks and foreign keys: each made unless the table already has its equal.
    -- Keys first, foreign keys last, since foreign keys need the keys they point at.
    FOR con IN
        SELECT * FROM oms_correlation_adoption.our_constraints
        ORDER BY CASE contype WHEN 'p' THEN 1 WHEN 'u' THEN 2 WHEN 'c' THEN 3 ELSE 4 END, table_name, constraint_name
    LOOP
        new_name := con.constraint_name;
        IF EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = format('%I.%I', home, con.table_name)::regclass
                   AND k.conname = new_name) THEN
            -- Ours, from an earlier adoption or install (kept by oms_keep_data_on_drop).
            IF EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = format('%I.%I', home, con.table_name)::regclass
                       AND k.conname = new_name AND k.contype = con.contype
                       AND (k.contype = 'c'
                            OR regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '') = con.definition)) THEN
                CONTINUE;
            END IF;
            new_name := left(new_name, 59) || '_oms';
        END IF;
        IF con.contype IN ('p', 'u') THEN
            -- Satisfied by any unique index on the same columns (the legacy primary key included).
            IF EXISTS (
                SELECT FROM pg_index x
                WHERE x.indrelid = format('%I.%I', home, con.table_name)::regclass AND x.indisunique
                  AND x.indpred IS NULL AND x.indexprs IS NULL
                  AND oms_correlation_adoption.column_names(x.indrelid, x.indkey::int2[]) @> con.columns
                  AND oms_correlation_adoption.column_names(x.indrelid, x.indkey::int2[]) <@ con.columns) THEN
                CONTINUE;
            END IF;
            IF EXISTS (SELECT FROM pg_partitioned_table p
                       WHERE p.partrelid = format('%I.%I', home, con.table_name)::regclass
                         AND NOT oms_correlation_adoption.column_names(p.partrelid, p.partattrs::int2[]) <@ con.columns) THEN
                CONTINUE WHEN EXISTS (
                    SELECT FROM pg_index x
                    WHERE x.indrelid = format('%I.%I', home, con.table_name)::regclass AND x.indpred IS NULL
                      AND oms_correlation_adoption.column_names(x.indrelid, x.indkey::int2[]) = con.columns);
                EXECUTE format('CREATE INDEX %I ON %I.%I (%s)', left(con.table_name || '_' || array_to_string(con.columns, '_'), 59) || '_idx',
                               home, con.table_name,
                               (SELECT string_agg(quote_ident(c), ', ') FROM unnest(con.columns) c));
                RAISE WARNING 'oms_correlation adoption: % is partitioned, so (%) is indexed but cannot be unique',
                    con.table_name, array_to_string(con.columns, ', ');
                CONTINUE;
            END IF;
            IF con.contype = 'p' AND EXISTS (SELECT FROM pg_constraint k WHERE k.contype = 'p'
                    AND k.conrelid = format('%I.%I', home, con.table_name)::regclass) THEN
                -- The legacy table has another primary key: ours becomes a unique key.
                con.definition := regexp_replace(con.definition, '^PRIMARY KEY', 'UNIQUE');
            END IF;
            BEGIN
                EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', home, con.table_name, new_name, con.definition);
            EXCEPTION
                WHEN unique_violation THEN
                    RAISE EXCEPTION 'cannot adopt %: its rows break the key % (%): %', con.table_name, new_name,
                        con.definition, SQLERRM
                        USING HINT = format('Find them with: SELECT %1$s, count(*) FROM %2$I GROUP BY %1$s HAVING count(*) > 1; '
                                            'resolve them, then run CREATE EXTENSION oms_correlation again.',
                                            array_to_string(con.columns, ', '), con.table_name);
                WHEN not_null_violation THEN
                    -- A key column the legacy table lacked (added empty) or left NULL in some rows.
                    RAISE EXCEPTION 'cannot adopt %: rows without a value in the key % (%)', con.table_name, new_name,
                        con.definition
                        USING HINT = format('Find them with: SELECT * FROM %1$I WHERE %2$s; give them values, then run '
                                            'CREATE EXTENSION oms_correlation again.', con.table_name,
                                            (SELECT string_agg(quote_ident(c) || ' IS NULL', ' OR ') FROM unnest(con.columns) c));
            END;
        ELSE
            -- A check or foreign key: skipped if the table has its equal, else added NOT VALID (it
            -- holds for new rows at once) and then validated where the legacy rows allow.
            IF (con.contype = 'c' AND EXISTS (
                    SELECT FROM pg_constraint k WHERE k.contype = 'c'
                       AND k.conrelid = format('%I.%I', home, con.table_name)::regclass
                       AND oms_correlation_adoption.bare_definition(pg_get_constraintdef(k.oid))
                           = oms_correlation_adoption.bare_definition(con.definition)))
               OR (con.contype = 'f' AND EXISTS (
                    SELECT FROM pg_constraint k
                    WHERE k.contype = 'f' AND k.conrelid = format('%I.%I', home, con.table_name)::regclass
                      AND k.confrelid = format('%I.%I', home, con.referenced_table)::regclass
                      AND oms_correlation_adoption.column_names(k.conrelid, k.conkey) = con.columns)) THEN
                CONTINUE;
            END IF;
            EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s NOT VALID', home, con.table_name, new_name,
                           con.definition);
            BEGIN
                EXECUTE format('ALTER TABLE %I.%I VALIDATE CONSTRAINT %I', home, con.table_name, new_name);
            EXCEPTION WHEN check_violation OR foreign_key_violation THEN
                RAISE WARNING 'oms_correlation adoption: legacy rows of % break % (%); it holds for new rows only',
                    con.table_name, new_name, con.definition;
            END;
        END IF;
    END LOOP;

    -- 6. Indexes: made unless an index on the same columns exists (the legacy schema indexed
    -- much; a full index also serves where ours is partial). One of ours on an expression (an
    -- outage's end) is always made: its plain columns alone would match a legacy index that
    -- cannot serve it, and a batch would read a feeder's whole history through that.
    FOR ix IN SELECT * FROM oms_correlation_adoption.our_indexes ORDER BY table_name, index_name LOOP
        IF NOT ix.on_expressions AND EXISTS (
            SELECT FROM pg_index x
            WHERE x.indrelid = format('%I.%I', home, ix.table_name)::regclass AND x.indexprs IS NULL
              AND x.indisunique = ix.indisunique AND (x.indpred IS NULL OR NOT ix.indisunique)
              AND oms_correlation_adoption.column_names(x.indrelid, x.indkey::int2[]) = ix.columns
              AND (ix.definition !~ ' WHERE ' OR x.indpred IS NULL
                   OR oms_correlation_adoption.bare_definition(substring(pg_get_indexdef(x.indexrelid) FROM ' USING .*$'))
                      = oms_correlation_adoption.bare_definition(substring(ix.definition FROM ' USING .*$')))) THEN
            CONTINUE;
        END IF;
        new_name := ix.index_name;
        IF to_regclass(format('%I.%I', home, new_name)) IS NOT NULL THEN
            new_name := left(new_name, 59) || '_oms';
        END IF;
        BEGIN
            EXECUTE regexp_replace(ix.definition, '^(CREATE (UNIQUE )?INDEX )\S+', '\1' || quote_ident(new_name));
        EXCEPTION WHEN unique_violation THEN
            RAISE EXCEPTION 'cannot adopt %: its rows break the unique index % (%)', ix.table_name, new_name,
                substring(ix.definition FROM ' USING .*$')
                USING HINT = 'Resolve the duplicates (at most one open outage per device, one alarm per identity), '
                             'then run CREATE EXTENSION oms_correlation again.';
        END;
    END LOOP;

    -- 7. Triggers: ours (the seeded-row merge that makes pg_restore exact, updated_at, ...), then
    -- the legacy ones step 1 dropped with their function, now calling our function of that name.
    FOR tg IN SELECT * FROM oms_correlation_adoption.our_triggers LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger g WHERE g.tgrelid = format('%I.%I', home, tg.table_name)::regclass
                       AND g.tgname = tg.trigger_name) THEN
            EXECUTE tg.definition;
        END IF;
    END LOOP;
    FOR tg IN SELECT * FROM oms_correlation_adoption.legacy_triggers LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
                       WHERE c.relnamespace = home_ns AND c.relname = tg.table_name AND g.tgname = tg.trigger_name) THEN
            EXECUTE tg.definition;
        END IF;
    END LOOP;

    -- A legacy registry row may name an ONU the NMS never reported (the legacy schema had no key
    -- there): it gets the stub a registry row gets from now on.
    IF 'oms_meters' = ANY (adopted) THEN
        EXECUTE format('INSERT INTO %1$I.onus (id, stub) SELECT DISTINCT m.onu_id, true FROM %1$I.oms_meters m '
                       'WHERE m.onu_id IS NOT NULL AND NOT EXISTS (SELECT FROM %1$I.onus o WHERE o.id = m.onu_id)', home);
    END IF;

    -- The legacy storm-mode settings row (the oldest, if several) is the extension's 'default'
    -- settings row: storm mode reads it, and a restore merges it with the seeded one.
    IF 'oms_storm_mode_config' = ANY (adopted) THEN
        EXECUTE format('UPDATE %1$I.oms_storm_mode_config SET config_name = ''default'' WHERE id = '
                       '(SELECT id FROM %1$I.oms_storm_mode_config WHERE config_key IS NULL AND config_name IS NULL '
                       ' ORDER BY created_at NULLS LAST, id LIMIT 1) '
                       'AND NOT EXISTS (SELECT FROM %1$I.oms_storm_mode_config WHERE config_name = ''default'')', home);
    END IF;

    -- 8. Seeds into adopted tables that arrived empty.
    FOREACH t IN ARRAY adopted LOOP
        EXECUTE format('SELECT EXISTS (SELECT FROM %I.%I)', home, t) INTO has_rows;
        CONTINUE WHEN has_rows;
        -- Ids come from the adopted table's own sequence or default.
        SELECT string_agg(quote_ident(c.column_name), ', ' ORDER BY c.attnum) INTO new_name
        FROM oms_correlation_adoption.our_columns c
        WHERE c.table_name = t AND coalesce(c.default_expr, '') !~ '(oms_uuid_v7|nextval)\(';
        EXECUTE format('INSERT INTO %1$I.%2$I (%3$s) SELECT %3$s FROM oms_correlation_adoption.our_seed_rows s, '
                       'jsonb_populate_record(NULL::%1$I.%2$I, s.row_data) WHERE s.table_name = %4$L',
                       home, t, new_name, t);
    END LOOP;

    DROP TABLE oms_correlation_adoption.our_columns, oms_correlation_adoption.our_constraints,
        oms_correlation_adoption.our_indexes, oms_correlation_adoption.our_triggers,
        oms_correlation_adoption.our_seed_rows;
    RAISE WARNING 'oms_correlation adoption: adopted % legacy tables with their rows: %',
        cardinality(adopted), array_to_string(adopted, ', ');
END
$take_in$;
