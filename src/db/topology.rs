//! Where meters hang (SPEC §3): a meter belongs to a feeder or substation through its own column or
//! a mapping row, and to a feeder through its DP.

/// A meter's place in the topology, for statements that name their meters in a CTE `target(id)`:
/// its feeder as SPEC §3 scopes it (its own column, else the mapping tables), else its DP's
/// feeder; its substation (its own column, else its feeder's, else the mapping table). Columns:
/// meter_id, customer_key (the customer, or the meter when it has none), customer_id, dp_id,
/// onu_id, last_event_at (of its newest applied event), feeder_id, substation_id, status.
macro_rules! located_meters {
    () => {
        r#"
SELECT m.id AS meter_id, coalesce(m.customer_id, m.id) AS customer_key, m.customer_id, m.dp_id, m.onu_id,
       m.last_event_at, t.feeder_id, t.substation_id, m.status
FROM target s
JOIN oms_meters m ON m.id = s.id
LEFT JOIN network_distribution_points dp ON dp.id = m.dp_id
CROSS JOIN LATERAL (
    SELECT coalesce(m.feeder_id,
                    (SELECT fm.feeder_id FROM network_feeder_meters fm WHERE fm.meter_id = m.id
                     ORDER BY fm.priority NULLS LAST, fm.feeder_id LIMIT 1),
                    (SELECT sm.feeder_id FROM network_substation_meters sm
                     WHERE sm.meter_id = m.id AND sm.feeder_id IS NOT NULL
                     ORDER BY sm.priority NULLS LAST, sm.feeder_id LIMIT 1),
                    dp.feeder_id) AS feeder_id) AS f0
LEFT JOIN network_feeders f ON f.id = f0.feeder_id
CROSS JOIN LATERAL (
    SELECT f0.feeder_id,
           coalesce(m.substation_id, f.substation_id,
                    (SELECT sm.substation_id FROM network_substation_meters sm WHERE sm.meter_id = m.id
                     ORDER BY sm.priority NULLS LAST, sm.substation_id LIMIT 1)) AS substation_id) AS t
"#
    };
}
pub(crate) use located_meters;
