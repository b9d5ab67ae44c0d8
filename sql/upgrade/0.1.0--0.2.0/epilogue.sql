-- 0.1.0 -> 0.2.0, hand-written part after the replaced objects: what 0.2.0 no longer has.
-- The SQL that recorded observations (now aggregated in Rust, src/observe.rs).
DROP FUNCTION @extschema@.ip_inventory_record_sql(text, text[], text, text, boolean);
-- Advisory-lock job exclusion (any role could take the key): replaced by
-- _ip_inventory_job_start/_release/_holder (src/jobs.rs).
DROP FUNCTION @extschema@.ip_inventory_job_holder(text);
DROP FUNCTION @extschema@.ip_inventory_job_lock(text);
DROP FUNCTION @extschema@.ip_inventory_job_start(text);
DROP FUNCTION @extschema@.ip_inventory_job_release(text);
