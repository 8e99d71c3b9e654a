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
        let missing = names(&format!(
            "{EXTENSION_RELATIONS} WHERE c.relkind IN ('r', 'S')
               AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'oms_correlation')::oid[])
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
             ORDER BY 1",
        );
        assert!(
            unpinned.is_empty(),
            "functions without a pinned search_path: {unpinned:?}"
        );
    }

    #[pg_test]
    fn every_column_naming_a_table_has_a_foreign_key() {
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
        assert!(
            unlinked.is_empty(),
            "columns without a foreign key: {unlinked:?}"
        );
    }
}
