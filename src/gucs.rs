//! Settings (SPEC §8), all under `oms_correlation.*`, settable per session, per role or in
//! `postgresql.conf`.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::PostgresGucEnum;

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScadaScope {
    /// Only meters with evidence of being off are affected.
    #[name = c"evidence"]
    Evidence,
    /// Every meter in scope is affected: SCADA is authoritative.
    #[name = c"topology"]
    Topology,
}

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnInvalidPayload {
    /// Keep the payload in `oms_rejected_events`, WARN, return NULL.
    #[name = c"quarantine"]
    Quarantine,
    /// Raise an ERROR with the payload's SQLSTATE.
    #[name = c"error"]
    Error,
}

/// Seconds without communication after which a meter counts as silent (default 15 min).
pub static COMM_FRESH_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(15 * 60);
pub static SCADA_SCOPE: GucSetting<ScadaScope> =
    GucSetting::<ScadaScope>::new(ScadaScope::Evidence);
pub static ON_INVALID_PAYLOAD: GucSetting<OnInvalidPayload> =
    GucSetting::<OnInvalidPayload>::new(OnInvalidPayload::Quarantine);
/// Read by the DROP EXTENSION guard (sql/functions/drop_guard.sql), not by Rust.
pub static ALLOW_DROP_WITH_DATA: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static CONFIDENCE_SCADA: GucSetting<f64> = GucSetting::<f64>::new(0.90);
pub static CONFIDENCE_ONU: GucSetting<f64> = GucSetting::<f64>::new(0.85);
pub static CONFIDENCE_KAIFA: GucSetting<f64> = GucSetting::<f64>::new(0.90);
pub static CONFIDENCE_CALL_CENTER: GucSetting<f64> = GucSetting::<f64>::new(0.60);

pub fn register() {
    GucRegistry::define_int_guc(
        c"oms_correlation.comm_fresh_window",
        c"How recently a meter must have communicated to count as online in a SCADA check.",
        c"A meter with no communication within this window before the SCADA event counts as offline (SPEC 4.1).",
        &COMM_FRESH_WINDOW,
        1,
        7 * 24 * 3600,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_enum_guc(
        c"oms_correlation.scada_scope",
        c"Which meters a SCADA outage affects: 'evidence' (offline ones) or 'topology' (all in scope).",
        c"",
        &SCADA_SCOPE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"oms_correlation.on_invalid_payload",
        c"What an invalid payload does: 'quarantine' (keep it, WARN, return NULL) or 'error'.",
        c"",
        &ON_INVALID_PAYLOAD,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"oms_correlation.allow_drop_with_data",
        c"Let DROP EXTENSION oms_correlation delete tables that hold outage history.",
        c"Off: DROP EXTENSION refuses while the tables hold data; SELECT oms_keep_data_on_drop() keeps them instead.",
        &ALLOW_DROP_WITH_DATA,
        GucContext::Suset,
        GucFlags::default(),
    );
    for (name, short, setting) in [
        (
            c"oms_correlation.confidence_scada",
            c"Confidence of a SCADA-derived meter status event.",
            &CONFIDENCE_SCADA,
        ),
        (
            c"oms_correlation.confidence_onu",
            c"Confidence of an ONU-derived meter status event.",
            &CONFIDENCE_ONU,
        ),
        (
            c"oms_correlation.confidence_kaifa",
            c"Confidence of a Kaifa-derived meter status event.",
            &CONFIDENCE_KAIFA,
        ),
        (
            c"oms_correlation.confidence_call_center",
            c"Confidence of a call-center report in the audit trail.",
            &CONFIDENCE_CALL_CENTER,
        ),
    ] {
        GucRegistry::define_float_guc(
            name,
            short,
            c"",
            setting,
            0.0,
            1.0,
            GucContext::Userset,
            GucFlags::default(),
        );
    }
}

/// The session's confidence settings, for `canonical`.
pub fn confidences() -> crate::canonical::Confidences {
    crate::canonical::Confidences {
        onu: CONFIDENCE_ONU.get(),
        kaifa: CONFIDENCE_KAIFA.get(),
        call_center: CONFIDENCE_CALL_CENTER.get(),
    }
}
