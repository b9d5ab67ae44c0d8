-- 0.1.0 -> 0.2.0, hand-written part after the replaced objects: what 0.2.0 no longer has.
-- The SQL that recorded observations (now aggregated in Rust, src/observe.rs).
DROP FUNCTION @extschema@.ip_inventory_record_sql(text, text[], text, text, boolean);
-- Advisory-lock job exclusion (any role could take the key): replaced by
-- _ip_inventory_job_start/_release/_holder (src/jobs.rs).
DROP FUNCTION @extschema@.ip_inventory_job_holder(text);
DROP FUNCTION @extschema@.ip_inventory_job_lock(text);
DROP FUNCTION @extschema@.ip_inventory_job_start(text);
DROP FUNCTION @extschema@.ip_inventory_job_release(text);
-- The due-row indexes on _ip_inventory_source_serves (as in sql/cascade.sql).
CREATE INDEX ip_inventory_cymru_due ON @extschema@.ip_inventory (cymru_ts NULLS FIRST)
    WHERE @extschema@._ip_inventory_source_serves('cymru', ip_address, ip_class, asn_source);
CREATE INDEX ip_inventory_greynoise_due ON @extschema@.ip_inventory (greynoise_ts NULLS FIRST)
    WHERE @extschema@._ip_inventory_source_serves('greynoise', ip_address, ip_class, asn_source);
CREATE INDEX ip_inventory_rdns_due ON @extschema@.ip_inventory (rdns_ts NULLS FIRST)
    WHERE @extschema@._ip_inventory_source_serves('rdns', ip_address, ip_class, asn_source);
-- The tag rules' triggers (as in sql/tags.sql), on their functions created above.
CREATE TRIGGER ip_inventory_tag_rule_check BEFORE INSERT OR UPDATE ON @extschema@.ip_inventory_tag_rules
    FOR EACH ROW EXECUTE FUNCTION @extschema@._ip_inventory_tag_rule_check();
CREATE TRIGGER ip_inventory_tag_rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.ip_inventory_tag_rules
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._ip_inventory_tag_rules_changed();
