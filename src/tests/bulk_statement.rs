#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::Uuid;

    use crate::db::scada_check::{bulk_statement, Device, Writes};

    const REPLICATION_ROLE: &str = "SELECT pg_catalog.current_setting('session_replication_role')";

    /// The `session_replication_role` a SCADA check's bulk statement for the feeder runs under.
    fn role_inside_bulk_statement(feeder: &str) -> String {
        let device = Spi::get_two_with_args::<Uuid, Uuid>(
            "SELECT substation_id, id FROM network_feeders WHERE feeder_id = $1",
            &[feeder.into()],
        )
        .unwrap();
        let device = Device {
            substation: device.0,
            feeder: device.1,
        };
        Spi::connect_mut(|client| {
            bulk_statement(client, REPLICATION_ROLE, &[], Writes::MetersOf(device))
                .unwrap()
                .first()
                .get_one::<String>()
                .unwrap()
                .unwrap()
        })
    }

    fn role_now() -> String {
        Spi::get_one::<String>(REPLICATION_ROLE).unwrap().unwrap()
    }

    // A feeder of 500 meters (REPLICA_MODE_MIN_METERS) gets replica mode, one of 499 does not; a
    // trigger of a DBA's on a table the check writes takes it away (replica mode would skip that
    // trigger too); the setting is back to what it was once the statement returns.
    #[pg_test]
    fn a_big_feeder_s_check_skips_foreign_key_triggers_only_when_no_dba_trigger_would_be_skipped() {
        Spi::run(
            "INSERT INTO network_substations (substation_id, name) VALUES ('SS-RM', 'Replica mode');
             INSERT INTO network_feeders (feeder_id, substation_id, name)
             SELECT f, id, f FROM network_substations, (VALUES ('F-500'), ('F-499')) AS v(f)
             WHERE substation_id = 'SS-RM';
             INSERT INTO oms_meters (meter_number, feeder_id, substation_id, power_status, communication_status)
             SELECT f.feeder_id || '-' || n, f.id, f.substation_id, 'on', 'online'
             FROM network_feeders f
             CROSS JOIN LATERAL generate_series(1, CASE f.feeder_id WHEN 'F-500' THEN 500 ELSE 499 END) AS n
             WHERE f.feeder_id IN ('F-500', 'F-499');",
        )
        .unwrap();
        assert_eq!(role_inside_bulk_statement("F-500"), "replica");
        assert_eq!(role_now(), "origin");
        assert_eq!(role_inside_bulk_statement("F-499"), "origin");

        Spi::run(
            "CREATE FUNCTION dba_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
             CREATE TRIGGER dba_audit AFTER INSERT ON oms_event_timeline FOR EACH ROW EXECUTE FUNCTION dba_audit();",
        )
        .unwrap();
        assert_eq!(role_inside_bulk_statement("F-500"), "origin");
        Spi::run("DROP TRIGGER dba_audit ON oms_event_timeline").unwrap();
        assert_eq!(role_inside_bulk_statement("F-500"), "replica");

        // Someone's own choice of replica mode is left alone, and stays theirs afterwards.
        Spi::run("SET LOCAL session_replication_role = replica").unwrap();
        assert_eq!(role_inside_bulk_statement("F-500"), "replica");
        assert_eq!(role_now(), "replica");
    }
}
