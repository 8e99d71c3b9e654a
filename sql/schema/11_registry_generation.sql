-- Where each meter hangs and how many active meters each DP and feeder has are what the
-- correlator reads of the registry (SPEC §5.3). Reading them for every batch read the registry of
-- every feeder the batch touched: a fifth of a storm's correlation. The correlator keeps them
-- between batches (src/correlation/registry_cache.rs) for as long as this generation stands still;
-- every statement that can change a place or a count moves it.
--
-- A row, so that it moves when the change commits, together with it: a sequence moved by a change
-- not yet committed would let the correlator keep what it read before the change under the new
-- generation. The correlator only reads it; two DBAs' changes to the registry wait for each other
-- here until the first commits.
CREATE TABLE @extschema@.oms_registry_generation (
    id          integer PRIMARY KEY CHECK (id = 1),
    generation  bigint NOT NULL
);
INSERT INTO @extschema@.oms_registry_generation VALUES (1, 0);

-- Runs as the extension's owner: a role that may change the registry need not have rights on
-- the extension's own tables.
CREATE FUNCTION @extschema@.oms_registry_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    UPDATE @extschema@.oms_registry_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
-- Only the owner makes triggers with it (firing one needs no right).
REVOKE ALL ON FUNCTION @extschema@.oms_registry_changed() FROM PUBLIC;

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
-- Replica mode (logical replication's apply, a restore run in it) changes the registry too.
ALTER TABLE @extschema@.oms_meters ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.oms_meters ENABLE ALWAYS TRIGGER oms_registry_truncated;
ALTER TABLE @extschema@.network_feeder_meters ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.network_distribution_points ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.network_distribution_points ENABLE ALWAYS TRIGGER oms_registry_truncated;
ALTER TABLE @extschema@.network_substation_meters ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.network_feeders ENABLE ALWAYS TRIGGER oms_registry_changed;
ALTER TABLE @extschema@.network_feeders ENABLE ALWAYS TRIGGER oms_registry_truncated;
