-- Where each meter hangs and how many active meters each DP and feeder has are what the
-- correlator reads of the registry (SPEC §5.3). Reading them for every batch read the registry of
-- every feeder the batch touched: a fifth of a storm's correlation. The correlator keeps them
-- between batches (src/correlation/registry_cache.rs) for as long as this sequence stands still;
-- every statement that can change a place or a count moves it. A sequence, not a row: a DBA's
-- change never waits for the correlator, nor it for them. Moved by a change that then rolls back,
-- it only makes the correlator read again.
CREATE SEQUENCE @extschema@.oms_registry_generation;
-- Any role that may change the registry may move it.
GRANT USAGE ON SEQUENCE @extschema@.oms_registry_generation TO PUBLIC;

CREATE FUNCTION @extschema@.oms_registry_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.nextval('@extschema@.oms_registry_generation');
    RETURN NULL;
END
$$;

CREATE TRIGGER oms_registry_changed
    AFTER INSERT OR DELETE OR UPDATE OF status, customer_id, onu_id, dp_id, feeder_id, substation_id
    ON @extschema@.oms_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_truncated AFTER TRUNCATE
    ON @extschema@.oms_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.network_feeder_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_changed AFTER INSERT OR DELETE OR UPDATE OF feeder_id
    ON @extschema@.network_distribution_points FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_truncated AFTER TRUNCATE
    ON @extschema@.network_distribution_points FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON @extschema@.network_substation_meters FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_changed AFTER INSERT OR DELETE OR UPDATE OF substation_id
    ON @extschema@.network_feeders FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
CREATE TRIGGER oms_registry_truncated AFTER TRUNCATE
    ON @extschema@.network_feeders FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.oms_registry_changed();
