#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn names(sql: &str) -> Vec<String> {
        Spi::connect(|client| {
            client
                .select(sql, None, &[])
                .unwrap()
                .map(|row| row.get::<String>(1).unwrap().unwrap())
                .collect()
        })
    }

    const EXTENSION_RELATIONS: &str = "
        SELECT c.relname::text FROM pg_depend d
        JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'oms_correlation'
        JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass";

    #[pg_test]
    fn every_table_and_sequence_is_kept_by_pg_dump() {
        // The registry generation and the outage writers hold no data: they tell the correlator's
        // caches of changes, made anew (and moved by the restored rows) when the extension is.
        let missing = names(&format!(
            "{EXTENSION_RELATIONS} WHERE c.relkind IN ('r', 'S')
               AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'oms_correlation')::oid[])
               AND c.relname NOT IN ('oms_registry_generation', 'oms_outage_writers')
             ORDER BY 1"
        ));
        assert!(
            missing.is_empty(),
            "not registered with pg_extension_config_dump: {missing:?}"
        );
    }

    #[pg_test]
    fn every_function_pins_its_search_path() {
        let unpinned = names(
            "SELECT p.proname::text FROM pg_depend d
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'oms_correlation'
             JOIN pg_proc p ON p.oid = d.objid AND d.classid = 'pg_proc'::regclass
             WHERE p.pronamespace::regnamespace::text <> 'tests'
               AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
               -- Procedures that commit cannot have a SET clause; they qualify every name instead.
               AND p.proname NOT IN ('oms_finish_adoption', 'oms_unpartition')
             ORDER BY 1",
        );
        assert!(
            unpinned.is_empty(),
            "functions without a pinned search_path: {unpinned:?}"
        );
    }

    /// Columns the legacy schema left without a key, where a key of ours would refuse rows a
    /// legacy load puts there (issue 10): the registry's ONU, the links that name a meter, the
    /// Kaifa children's message (they hang off the payload instead), an alarm's outage.
    const LEGACY_UNKEYED: &[&str] = &[
        "callcenter_customers.meter_id",
        "kaifa_event_assets.event_id",
        "kaifa_event_assets.meter_id",
        "kaifa_event_details.event_id",
        "kaifa_event_names.event_id",
        "kaifa_event_status.event_id",
        "kaifa_event_usage_points.event_id",
        "kaifa_event_usage_points.meter_id",
        "kaifa_event_users.event_id",
        "meters.oms_meter_id",
        "oms_meters.onu_id",
        "oms_onu_devices.onu_id",
        "onu_events.meter_id",
        "scada_event_affected_meters.meter_id",
        "scada_events.outage_event_id",
    ];

    /// A membership's (or a momentary interruption's) record of where its meter hung and whom it
    /// served when it went off: a snapshot, kept as it was when the device or customer goes (and
    /// written by the single correlator in bulk, where these checks cost half of a storm's
    /// membership writes).
    const SNAPSHOTS: &[&str] = &[
        "oms_momentary_interruptions.customer_id",
        "oms_momentary_interruptions.dp_id",
        "oms_momentary_interruptions.feeder_id",
        "oms_momentary_interruptions.onu_id",
        "oms_momentary_interruptions.substation_id",
        "oms_outage_meters.customer_id",
        "oms_outage_meters.dp_id",
        "oms_outage_meters.feeder_id",
        "oms_outage_meters.substation_id",
    ];

    #[pg_test]
    fn every_column_naming_a_table_has_a_foreign_key_unless_the_legacy_schema_had_none() {
        // (table, column) pairs whose name says they point somewhere.
        let unlinked = names(&format!(
            "SELECT t.relname || '.' || a.attname FROM ({EXTENSION_RELATIONS} WHERE c.relkind = 'r') AS ext(relname)
             JOIN pg_class t ON t.relname = ext.relname
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE a.attname IN ('meter_id', 'customer_id', 'substation_id', 'feeder_id', 'dp_id', 'onu_id',
                                 'outage_event_id', 'scada_event_id', 'ticket_id', 'event_id', 'oms_meter_id')
               AND format_type(a.atttypid, a.atttypmod) IN ('uuid', 'integer')
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = t.oid AND k.contype = 'f'
                               AND a.attnum = ANY (k.conkey))
             ORDER BY 1"
        ));
        let mut expected: Vec<&str> = LEGACY_UNKEYED.iter().chain(SNAPSHOTS).copied().collect();
        expected.sort_unstable();
        assert_eq!(unlinked, expected, "columns without a foreign key");
    }

    /// The SCADA check states the scope condition inline; it must select what `oms_meter_scope`
    /// selects, for feeders and substations, through every kind of membership.
    #[pg_test]
    fn scada_check_scope_agrees_with_oms_meter_scope() {
        Spi::run(
            "INSERT INTO network_substations (substation_id) VALUES ('S1'), ('S2');
             INSERT INTO network_feeders (feeder_id, substation_id)
             SELECT f, (SELECT id FROM network_substations WHERE substation_id = s)
             FROM (VALUES ('F1', 'S1'), ('F2', 'S1'), ('F3', 'S2')) AS v(f, s);
             INSERT INTO oms_meters (meter_number, feeder_id)
             SELECT 'own-' || f.feeder_id || '-' || n, f.id FROM network_feeders f, generate_series(1, 3) n;
             INSERT INTO oms_meters (meter_number, substation_id)
             SELECT 'sub-' || s.substation_id, s.id FROM network_substations s;
             INSERT INTO oms_meters (meter_number) VALUES ('mapped-f2'), ('mapped-s2'), ('mapped-s1-f1');
             INSERT INTO network_feeder_meters (feeder_id, meter_id)
             SELECT f.id, m.id FROM network_feeders f, oms_meters m WHERE f.feeder_id = 'F2' AND m.meter_number = 'mapped-f2';
             INSERT INTO network_substation_meters (substation_id, meter_id, feeder_id)
             SELECT s.id, m.id, f.id FROM network_substations s, oms_meters m, network_feeders f
             WHERE s.substation_id = 'S1' AND m.meter_number = 'mapped-s1-f1' AND f.feeder_id = 'F1';
             INSERT INTO network_substation_meters (substation_id, meter_id)
             SELECT s.id, m.id FROM network_substations s, oms_meters m
             WHERE s.substation_id = 'S2' AND m.meter_number = 'mapped-s2';",
        )
        .unwrap();
        for (substation, feeder, expected) in [
            ("S1", None, 9),
            ("S2", None, 5),
            ("S1", Some("F1"), 4),
            ("S1", Some("F2"), 4),
            ("S2", Some("F3"), 3),
        ] {
            let scada = format!(
                r#"{{"eventType": "trip", "substationId": "{substation}", {} "timestamp": "2025-09-30T10:00:00Z"}}"#,
                feeder
                    .map(|f| format!(r#""feederId": "{f}","#))
                    .unwrap_or_default()
            );
            let checked = Spi::get_one_with_args::<i64>(
                "SELECT (insert_scada_event_with_meter_check($1::jsonb) ->> 'total_meters')::bigint",
                &[scada.as_str().into()],
            )
            .unwrap()
            .unwrap();
            let scoped = Spi::get_one_with_args::<i64>(
                "SELECT count(*) FROM oms_meter_scope((SELECT id FROM network_substations WHERE substation_id = $1),
                                                      (SELECT id FROM network_feeders WHERE feeder_id = $2))",
                &[substation.into(), feeder.into()],
            )
            .unwrap()
            .unwrap();
            assert_eq!(
                (checked, scoped),
                (expected, expected),
                "{substation} {feeder:?}"
            );
        }
    }

    /// The names sql/adoption/1_set_aside.sql sets aside must be exactly the extension's own:
    /// a table added to the schema but not to that list would make CREATE EXTENSION fail on a
    /// legacy database that has it.
    fn set_aside_list(variable: &str) -> Vec<String> {
        let sql = include_str!("../../sql/adoption/1_set_aside.sql");
        let start = sql
            .find(&format!("{variable} constant text[] := ARRAY["))
            .unwrap();
        let list = &sql[start..];
        let list = &list[list.find("ARRAY[").unwrap() + "ARRAY[".len()..list.find("];").unwrap()];
        let mut names: Vec<String> = list
            .split(',')
            .map(|n| n.trim().trim_matches('\'').to_string())
            .collect();
        names.sort();
        names
    }

    #[pg_test]
    fn adoption_knows_every_table_view_and_function_of_the_extension() {
        let members = |kind: &str| {
            let mut found = names(&format!(
                "SELECT name FROM (
                     SELECT c.relname::text AS name, CASE WHEN c.relkind IN ('r', 'p') THEN 'table' ELSE 'view' END AS kind
                     FROM pg_depend d JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass
                     WHERE d.deptype = 'e' AND c.relkind IN ('r', 'p', 'v')
                       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'oms_correlation')
                     UNION
                     SELECT p.proname::text, 'function'
                     FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid AND d.classid = 'pg_proc'::regclass
                     WHERE d.deptype = 'e' AND p.pronamespace::regnamespace::text <> 'tests'
                       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'oms_correlation')
                 ) AS members WHERE kind = '{kind}'"
            ));
            found.sort();
            found
        };
        // Not the generation and the writers: they hold no data, and oms_keep_data_on_drop() leaves them to the
        // extension, so no earlier table of those names can be there to adopt.
        let mut tables = members("table");
        tables.retain(|t| t != "oms_registry_generation" && t != "oms_outage_writers");
        assert_eq!(set_aside_list("our_tables"), tables);
        assert_eq!(set_aside_list("our_views"), members("view"));
        assert_eq!(set_aside_list("our_functions"), members("function"));
    }
}
