-- Defaults (SPEC §3), and registration of every data table with pg_dump.
--
-- pg_restore runs CREATE EXTENSION and then loads the dumped rows of these tables, which are the
-- tables as they were: so when pg_restore (its application_name) creates the extension, nothing
-- is seeded, and a rule or term a DBA deleted stays deleted.

-- The legacy scripts' rules, as they seeded them: SPEC §3's weights come from the standard rule.
INSERT INTO @extschema@.oms_correlation_rules
    (rule_name, source_types, correlation_window_minutes, spatial_radius_meters, confidence_threshold,
     weight_scada, weight_kaifa, weight_onu, weight_call_center, is_active)
SELECT * FROM (VALUES
    ('SCADA Priority', '{scada}'::varchar[], 15, 500, 0.90, 1.00, 0.00, 0.00, 0.00, true),
    ('Standard Outage Detection', '{scada,kaifa,onu,call_center}', 30, 1000, 0.70, 1.00, 0.80, 0.60, 0.40, true),
    ('Storm Mode Detection', '{scada,kaifa,onu,call_center}', 60, 2000, 0.50, 1.00, 0.80, 0.60, 0.40, true)) AS seed
WHERE pg_catalog.current_setting('application_name') IS DISTINCT FROM 'pg_restore';

INSERT INTO @extschema@.oms_storm_mode_config (config_name)
SELECT 'default' WHERE pg_catalog.current_setting('application_name') IS DISTINCT FROM 'pg_restore';

INSERT INTO @extschema@.scada_alarm_vocabulary (term, classification)
SELECT * FROM (VALUES
    ('fault', 'outage'),
    ('breaker_trip', 'outage'),
    ('trip', 'outage'),
    ('tripped', 'outage'),
    ('power_failure', 'outage'),
    ('outage', 'outage'),
    ('loss of voltage', 'outage'),
    ('undervoltage', 'outage'),
    ('de-energized', 'outage'),
    ('deenergised', 'outage'),
    ('breaker open', 'outage'),
    ('lockout', 'outage'),
    ('energized', 'restoration'),
    ('energised', 'restoration'),
    ('restoration', 'restoration'),
    ('restored', 'restoration'),
    ('breaker close', 'restoration'),
    ('breaker closed', 'restoration'),
    ('reclose', 'restoration'),
    ('power_restored', 'restoration')) AS seed
WHERE pg_catalog.current_setting('application_name') IS DISTINCT FROM 'pg_restore';

-- A plain dump fed to psql finds the defaults seeded: oms_merge_seeded_row()
-- (sql/functions/merge_seeded_row.sql) lets an incoming row replace the seeded one.
CREATE TRIGGER oms_correlation_rules_merge BEFORE INSERT ON @extschema@.oms_correlation_rules
    FOR EACH ROW EXECUTE FUNCTION @extschema@.oms_merge_seeded_row();
CREATE TRIGGER oms_storm_mode_config_merge BEFORE INSERT ON @extschema@.oms_storm_mode_config
    FOR EACH ROW EXECUTE FUNCTION @extschema@.oms_merge_seeded_row();
CREATE TRIGGER scada_alarm_vocabulary_merge BEFORE INSERT ON @extschema@.scada_alarm_vocabulary
    FOR EACH ROW EXECUTE FUNCTION @extschema@.oms_merge_seeded_row();

-- pg_dump keeps extension tables' rows only when they are registered (pgmq lost users' data for
-- want of this). One call per statement: each call rewrites the same pg_extension row.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.network_substations', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.network_feeders', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.network_distribution_points', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_customers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.onus', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_meters', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.network_substation_meters', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.network_feeder_meters', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_meter_status_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_outage_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_event_sources', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_event_timeline', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_outage_meters', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_storm_mode_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_signal_rate', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_correlation_rules', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_storm_mode_config', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.scada_alarm_vocabulary', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.scada_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.scada_event_affected_meters', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.scada_raw_messages', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.meters', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.meters_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.onu_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.onu_events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_headers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_users', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_payloads', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_assets', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_usage_points', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_details', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_names', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_status', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_metadata', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kaifa_event_original_messages', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.callcenter_tickets', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.callcenter_customers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.callcenter_ticket_status_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.callcenter_raw_messages', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_rejected_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_outage_customers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_crew_assignments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_customer_notifications', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_smart_meters', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.oms_onu_devices', '');
