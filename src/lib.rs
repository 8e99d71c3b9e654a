//! `oms_correlation`: outage correlation for an electricity utility's OMS, inside PostgreSQL.
//!
//! Layers, from the payload inwards:
//! - `payload`: serde decoding and validation of the four sources' JSON (pure Rust);
//! - `canonical`: each source reduced to one shape, a `MeterSignal`, plus classification rules;
//! - `db`: SPI statements: source tables, the meter registry and audit, SCADA checks;
//! - `correlation`: the outage engine (SPEC §5): a queue, one correlator that loads, decides in
//!   plain Rust, and writes in set-based batches, and its background worker;
//! - `api`: the thin `#[pg_extern]` functions of SPEC §2 and the bad-input policy;
//! - `sql/`: the schema, SQL helper functions and views, pulled in below in dependency order.

use pgrx::prelude::*;

pub mod api;
pub mod canonical;
pub mod correlation;
pub mod db;
pub mod error;
pub mod gucs;
pub mod payload;

::pgrx::pg_module_magic!(name, version);

// Adopting a legacy database (README, "Adopting a legacy database"): set its tables aside first,
// take them in once ours exist, and carry its grants over last. On a fresh database they do nothing.
extension_sql_file!(
    "../sql/adoption/1_set_aside.sql",
    name = "adoption_set_aside",
    bootstrap
);
extension_sql_file!(
    "../sql/adoption/2_take_in.sql",
    name = "adoption_take_in",
    requires = ["seed_and_dump", "since_0_2_0"]
);
extension_sql_file!(
    "../sql/adoption/3_carry_over_grants.sql",
    name = "adoption_carry_over_grants",
    finalize
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::register();
    correlation::worker::register_static();
}

extension_sql_file!(
    "../sql/schema/01_topology.sql",
    name = "topology",
    requires = [api::helpers::oms_uuid_v7]
);
extension_sql_file!(
    "../sql/schema/02_registry.sql",
    name = "registry",
    requires = ["topology"]
);
extension_sql_file!(
    "../sql/schema/03_outages.sql",
    name = "outages",
    requires = ["registry"]
);
extension_sql_file!(
    "../sql/schema/04_sources.sql",
    name = "sources",
    requires = ["outages"]
);
extension_sql_file!(
    "../sql/schema/05_operations.sql",
    name = "operations",
    requires = ["sources"]
);
extension_sql_file!(
    "../sql/schema/06_legacy_compat.sql",
    name = "legacy_compat",
    requires = ["operations"]
);
extension_sql_file!(
    "../sql/functions/merge_seeded_row.sql",
    name = "merge_seeded_row",
    requires = ["legacy_compat"]
);
extension_sql_file!(
    "../sql/schema/07_seed_and_dump.sql",
    name = "seed_and_dump",
    requires = ["merge_seeded_row"]
);
extension_sql_file!(
    "../sql/schema/09_correlator.sql",
    name = "correlator_schema",
    requires = ["seed_and_dump"]
);
// After the adoption took the legacy tables in: their foreign keys are checked the same way.
extension_sql_file!(
    "../sql/schema/10_references.sql",
    name = "references",
    requires = ["adoption_take_in", "correlator_schema"]
);
extension_sql_file!(
    "../sql/schema/11_registry_generation.sql",
    name = "registry_generation",
    requires = ["adoption_take_in", "correlator_schema"]
);
extension_sql_file!(
    "../sql/schema/12_outage_writers.sql",
    name = "outage_writers",
    requires = ["adoption_take_in", "correlator_schema"]
);
extension_sql_file!(
    "../sql/functions/scope.sql",
    name = "scope",
    requires = ["adoption_take_in"]
);
extension_sql_file!(
    "../sql/functions/helpers.sql",
    name = "helpers",
    requires = [
        "scope",
        api::helpers::oms_update_meter_status,
        api::helpers::oms_process_scada_event_meters
    ]
);
extension_sql_file!(
    "../sql/functions/views.sql",
    name = "views",
    requires = ["scope"]
);
extension_sql_file!(
    "../sql/functions/ingest_functions.sql",
    name = "ingest_functions",
    requires = [
        api::scada::insert_scada_event_with_meter_check,
        api::scada::insert_scada_event_from_json,
        api::onu::insert_onu_event_from_json_with_meter_sync,
        api::onu::insert_onu_event_from_json,
        api::kaifa::insert_kaifa_event_from_json_with_meter_sync,
        api::kaifa::insert_kaifa_event_from_json,
        api::callcenter::insert_callcenter_ticket_from_json_with_meter_link,
        api::callcenter::insert_callcenter_ticket_from_json,
    ]
);

// Since 0.2.0; upgrades get them from sql/oms_correlation--0.1.0--0.2.0.sql.
extension_sql_file!(
    "../sql/schema/08_since_0_2_0.sql",
    name = "since_0_2_0",
    requires = ["seed_and_dump"]
);
extension_sql_file!(
    "../sql/functions/sync.sql",
    name = "sync",
    requires = ["adoption_take_in"]
);
extension_sql_file!(
    "../sql/functions/correlate_events.sql",
    name = "correlate_events",
    requires = ["adoption_take_in"]
);
extension_sql_file!(
    "../sql/functions/finish_adoption.sql",
    name = "finish_adoption",
    requires = ["adoption_take_in"]
);
extension_sql_file!(
    "../sql/functions/reliability.sql",
    name = "reliability",
    requires = ["adoption_take_in", "correlator_schema"]
);
extension_sql_file!(
    "../sql/functions/correlator.sql",
    name = "correlator_functions",
    requires = ["adoption_take_in", "correlator_schema"]
);
extension_sql_file!(
    "../sql/functions/stream.sql",
    name = "stream",
    requires = ["adoption_take_in", api::helpers::oms_engine_is_writing]
);
extension_sql_file!(
    "../sql/functions/drop_guard.sql",
    name = "drop_guard",
    requires = ["adoption_take_in", api::helpers::oms_uuid_v7]
);
extension_sql_file!(
    "../sql/functions/keep_data.sql",
    name = "keep_data",
    requires = [
        "drop_guard",
        "references",
        "registry_generation",
        "outage_writers"
    ]
);

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
