-- The seeded tables hold both our defaults and the DBA's edits. A restore by other means than
-- pg_restore (a plain dump fed to psql) finds the defaults seeded, so an incoming row replaces the
-- seeded row with the same key (or id) instead of failing the whole COPY.
CREATE FUNCTION @extschema@.oms_merge_seeded_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'oms_correlation_rules' THEN
        DELETE FROM oms_correlation_rules WHERE rule_name = NEW.rule_name OR id = NEW.id;
    ELSIF TG_TABLE_NAME = 'oms_storm_mode_config' THEN
        DELETE FROM oms_storm_mode_config
         WHERE config_name = NEW.config_name OR config_key = NEW.config_key OR id = NEW.id;
    ELSIF TG_TABLE_NAME = 'scada_alarm_vocabulary' THEN
        DELETE FROM scada_alarm_vocabulary WHERE term = NEW.term;
    ELSIF TG_TABLE_NAME = 'oms_correlation_state' THEN
        DELETE FROM oms_correlation_state WHERE id = NEW.id;
    END IF;
    RETURN NEW;
END
$$;
