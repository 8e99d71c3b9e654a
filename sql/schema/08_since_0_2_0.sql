-- Schema added in 0.2.0 (upgrades get it from sql/oms_correlation--0.1.0--0.2.0.sql).

-- "Is there a newer restoration of this device?" is asked by every SCADA outage alarm
-- (src/api/scada.rs); restorations are few, so a partial index answers it at once.
CREATE INDEX scada_events_restorations
    ON @extschema@.scada_events (substation_id, feeder_id, event_timestamp)
    WHERE (check_result ->> 'classification') = 'restoration';
