#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn onu_event(event_id: &str, onu_id: i32, kind: &str, at: &str) -> String {
        format!(
            r#"{{"eventId": "{event_id}", "type": "{kind}", "onuId": {onu_id}, "timestamp": "{at}"}}"#
        )
    }

    fn ingest_onu(payload: &str) -> Option<i32> {
        Spi::get_one_with_args::<i32>(
            "SELECT insert_onu_event_from_json_with_meter_sync($1::jsonb)",
            &[payload.into()],
        )
        .unwrap()
    }

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap()
    }

    #[pg_test]
    fn uuid_v7_is_time_ordered() {
        let a = Spi::get_one::<pgrx::Uuid>("SELECT oms_uuid_v7()")
            .unwrap()
            .unwrap();
        let b = Spi::get_one::<pgrx::Uuid>("SELECT oms_uuid_v7()")
            .unwrap()
            .unwrap();
        assert!(a.as_bytes() < b.as_bytes());
        assert_eq!(a.as_bytes()[6] >> 4, 7);
    }

    #[pg_test]
    fn settings_are_registered_with_their_defaults() {
        for (name, value) in [
            ("oms_correlation.comm_fresh_window", "15min"),
            ("oms_correlation.scada_scope", "evidence"),
            ("oms_correlation.on_invalid_payload", "quarantine"),
            ("oms_correlation.confidence_onu", "0.85"),
        ] {
            let shown =
                Spi::get_one::<String>(&format!("SELECT current_setting('{name}')")).unwrap();
            assert_eq!(shown.as_deref(), Some(value), "{name}");
        }
    }

    #[pg_test]
    fn last_gasp_reaches_every_meter_behind_the_onu() {
        Spi::run(
            "INSERT INTO onus (id) VALUES (42);
             INSERT INTO oms_meters (meter_number, onu_id, power_status, communication_status)
             VALUES ('A1', 42, 'on', 'online'), ('A2', 42, 'on', 'online'), ('A3', NULL, 'on', 'online'),
                    ('A4', 42, 'on', 'online');
             UPDATE oms_meters SET status = 'inactive' WHERE meter_number = 'A4';",
        )
        .unwrap();
        let payload = r#"{"eventId": "E1", "type": "ONU_LastGaspAlert", "onuId": 42,
                          "timestamp": "2025-09-30T10:05:00Z", "associatedMeters": ["A3"]}"#;
        assert!(ingest_onu(payload).is_some());
        // A1, A2 by ONU, A3 by number; A4 is inactive and out of scope.
        assert_eq!(
            count("SELECT count(*) FROM oms_meters WHERE power_status = 'off'"),
            3
        );
        assert_eq!(
            count("SELECT count(*) FROM oms_meter_status_events WHERE confidence_score = 0.85"),
            3
        );
    }

    #[pg_test]
    fn kept_plans_survive_schema_changes() {
        Spi::run("INSERT INTO onus (id) VALUES (7); INSERT INTO oms_meters (meter_number, onu_id) VALUES ('B1', 7)")
            .unwrap();
        assert!(ingest_onu(&onu_event(
            "P1",
            7,
            "ONU_LastGaspAlert",
            "2025-09-30T10:00:00Z"
        ))
        .is_some());
        // A DBA adds a column and an index while backends hold prepared plans.
        Spi::run("ALTER TABLE oms_meters ADD COLUMN dba_note text; CREATE INDEX ON oms_meters (dba_note)").unwrap();
        assert!(ingest_onu(&onu_event(
            "P2",
            7,
            "ONU_PowerRestored",
            "2025-09-30T10:01:00Z"
        ))
        .is_some());
        assert_eq!(
            count("SELECT count(*) FROM oms_meters WHERE power_status = 'on'"),
            1
        );
    }

    #[pg_test]
    fn quarantine_returns_null_and_keeps_the_payload() {
        assert_eq!(ingest_onu(r#"{"onuId": "not a number"}"#), None);
        assert_eq!(
            count("SELECT count(*) FROM oms_rejected_events WHERE sqlstate = '22P02'"),
            1
        );
        assert_eq!(count("SELECT count(*) FROM onu_events"), 0);
    }

    #[pg_test(
        error = "invalid ONU payload: field \"timestamp\": expected timestamp text, found a number"
    )]
    fn error_mode_raises() {
        Spi::run("SET LOCAL oms_correlation.on_invalid_payload = 'error'").unwrap();
        ingest_onu(r#"{"onuId": 1, "type": "x", "timestamp": 1759226400}"#);
    }
}
