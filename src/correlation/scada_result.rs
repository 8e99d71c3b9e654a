//! What `insert_scada_event_with_meter_check` returns (SPEC §4.1): one shape on every path
//! (outage, join, restoration, informational, unknown device, redelivery), so that the consumers,
//! which log these keys, find every one of them every time. Counts a path does not take are 0,
//! ids it does not have are null.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScadaResult {
    pub scada_event_id: String,
    /// The alarm was delivered before: this is that delivery's result.
    pub duplicate: bool,
    /// 'outage', 'restoration' or 'informational', by the vocabulary.
    pub classification: String,
    /// Whether the meters in scope were checked.
    pub meters_checked: bool,
    /// 'feeder' or 'substation'; null when the device is unknown or the alarm informational.
    pub scope: Option<String>,
    /// `oms_correlation.scada_scope` in effect: 'evidence' or 'topology'.
    pub scada_scope: String,
    pub total_meters: i32,
    pub offline_meters: i32,
    pub online_meters: i32,
    pub unknown_meters: i32,
    /// Meters an outage alarm marked off.
    pub affected_meters: i32,
    /// Meters a restoration turned back on.
    pub restored_meters: i32,
    /// The outage the alarm opened or joined, or the first one a restoration restored.
    pub outage_event_id: Option<String>,
    pub outage_created: bool,
    pub restored_outages: Vec<String>,
    /// An outage alarm older than a restoration of its device already handled.
    pub superseded: bool,
    /// Why the meters were not checked, or what else the caller should know.
    pub reason: Option<String>,
}

impl Default for ScadaResult {
    fn default() -> Self {
        ScadaResult {
            scada_event_id: String::new(),
            duplicate: false,
            classification: "informational".into(),
            meters_checked: false,
            scope: None,
            scada_scope: "evidence".into(),
            total_meters: 0,
            offline_meters: 0,
            online_meters: 0,
            unknown_meters: 0,
            affected_meters: 0,
            restored_meters: 0,
            outage_event_id: None,
            outage_created: false,
            restored_outages: Vec::new(),
            superseded: false,
            reason: None,
        }
    }
}

impl ScadaResult {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a ScadaResult serializes")
    }

    /// A stored result as a redelivery returns it: in today's shape (a result stored by an older
    /// release lacks keys), marked as a duplicate.
    pub fn redelivered(stored: serde_json::Value) -> ScadaResult {
        let mut result: ScadaResult = serde_json::from_value(stored).unwrap_or_default();
        result.duplicate = true;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEYS: [&str; 17] = [
        "scada_event_id",
        "duplicate",
        "classification",
        "meters_checked",
        "scope",
        "scada_scope",
        "total_meters",
        "offline_meters",
        "online_meters",
        "unknown_meters",
        "affected_meters",
        "restored_meters",
        "outage_event_id",
        "outage_created",
        "restored_outages",
        "superseded",
        "reason",
    ];

    fn keys(value: &serde_json::Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn every_result_has_every_key() {
        let mut expected = KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys(&ScadaResult::default().to_json()), expected);
    }

    #[test]
    fn a_result_stored_by_an_older_release_comes_back_whole() {
        // What 0.2.0 stored for an informational alarm.
        let stored = json!({"scada_event_id": "e1", "meters_checked": false, "reason": "informational alarm"});
        let result = ScadaResult::redelivered(stored).to_json();
        let mut expected = KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys(&result), expected);
        assert_eq!(result["duplicate"], json!(true));
        assert_eq!(result["reason"], json!("informational alarm"));
        assert_eq!(result["total_meters"], json!(0));
    }
}
