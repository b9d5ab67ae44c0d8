-- Tag rules (docs/tags.md): a tag and a confidence for the addresses whose inventory data
-- match a declarative condition, materialized per address in ip_inventory (tags,
-- tag_confidence, tags_generation).
--
-- A condition is a jsonb object of a fixed set of keys, checked when a rule is written
-- (_ip_inventory_tag_check) and compiled into a boolean SQL expression over an inventory row
-- (_ip_inventory_tag_condition_sql) in which every value is a quoted literal: no rule text is
-- ever run as SQL, so whoever may write rules can make no role run code. The compiled tagging
-- SQL of the enabled rules is kept in ip_inventory_tag_state, rebuilt by a statement trigger
-- whenever the rules change, so tagging a batch costs no compilation, and nothing at all
-- while no rule is enabled.
--
-- Tags are written after each enrichment of a row (_ip_inventory_tag: new rows, MaxMind
-- re-enrichment, the network sources' answers) and, after the rules change, by
-- ip_inventory_retag() in batches, resumable. No trigger on ip_inventory (Citus has none on
-- distributed tables).

CREATE TABLE @extschema@.ip_inventory_tag_rules (
    rule_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag         text NOT NULL CONSTRAINT ip_inventory_tag_rules_tag_check
                    CHECK (tag ~ '^[a-z0-9][a-z0-9_.:-]{0,62}$'),
    attack_type text CONSTRAINT ip_inventory_tag_rules_attack_type_check
                    CHECK (attack_type ~ '^[a-z0-9][a-z0-9_.:-]{0,62}$'),
    confidence  numeric NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    condition   jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    comment     text CHECK (octet_length(comment) <= 2000),
    event_table regclass,
    created_by  text NOT NULL DEFAULT current_user,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_tag_rules', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ip_inventory_tag_rules_rule_id_seq', '');

COMMENT ON TABLE @extschema@.ip_inventory_tag_rules IS
    'Tag rules: a tag, its attack type and confidence for the addresses whose inventory data match a declarative condition (docs/tags.md). Written by the extension''s owner and the roles granted INSERT/UPDATE/DELETE on it; tags are materialized in ip_inventory.tags (run ip_inventory_retag() after a change).';
COMMENT ON SEQUENCE @extschema@.ip_inventory_tag_rules_rule_id_seq IS 'Numbers the tag rules (ip_inventory_tag_rules.rule_id); dumped with them.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.rule_id IS 'The rule''s number.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.tag IS 'The tag (lowercase letters, digits, _ . : -, at most 63). Several rules may give one tag: an address gets the highest confidence of those it matches.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.attack_type IS 'The attack type or category of the tag (same alphabet); every rule giving one tag names the same one. The report views count by it.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.confidence IS 'Confidence of the tag for a matching address, in [0, 1].';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.condition IS 'A jsonb object whose keys must all match (docs/tags.md): country, asn, ip_class, network, greynoise_classification, greynoise_noise, greynoise_riot, rdns_regex, is_anonymous, is_anonymous_vpn, is_hosting_provider, is_public_proxy, is_residential_proxy, is_tor_exit_node, isp, isp_regex, connection_type, mobile_country_code, mobile_network_code, in_list, and the combinators not, any, all. Checked when written.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.enabled IS 'Only enabled rules tag.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.comment IS 'Why the rule exists.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.event_table IS 'NULL: an address rule (tags materialized in ip_inventory.tags). An attached event table: an event rule, whose condition has an "event" key over the table''s columns; its tags are per event, in the <prefix>_event_tags columns of the table''s enriched view.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.created_by IS 'The role that created it (default: the inserting role; kept by updates).';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.created_at IS 'When it was created.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_rules.updated_at IS 'When it was last changed.';

-- One row: the rules' generation (bumped by every change), how many are enabled and the
-- compiled tagging expression. Rebuilt from the rules by their statement trigger (also when
-- pg_restore loads them), so it is not dumped.
CREATE TABLE @extschema@.ip_inventory_tag_state (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation    bigint NOT NULL,
    enabled_rules int NOT NULL,
    compiled      text,
    changed_at    timestamptz,
    event_tables  regclass[] NOT NULL DEFAULT '{}'
);
INSERT INTO @extschema@.ip_inventory_tag_state (generation, enabled_rules) VALUES (0, 0);
COMMENT ON TABLE @extschema@.ip_inventory_tag_state IS
    'The tag rules'' generation (bumped by every change), the number of enabled rules and their compiled tagging expression (internal; rebuilt by a trigger on ip_inventory_tag_rules).';

-- The condition keys and the JSON type of their value.
CREATE FUNCTION @extschema@._ip_inventory_tag_keys()
RETURNS TABLE (key text, kind text) LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT k.key, k.kind FROM (VALUES
        ('country', 'array'), ('asn', 'array'), ('ip_class', 'array'), ('network', 'array'),
        ('greynoise_classification', 'array'), ('greynoise_noise', 'boolean'),
        ('greynoise_riot', 'boolean'), ('rdns_regex', 'string'),
        ('is_anonymous', 'boolean'), ('is_anonymous_vpn', 'boolean'),
        ('is_hosting_provider', 'boolean'), ('is_public_proxy', 'boolean'),
        ('is_residential_proxy', 'boolean'), ('is_tor_exit_node', 'boolean'),
        ('isp', 'array'), ('isp_regex', 'string'), ('connection_type', 'array'),
        ('mobile_country_code', 'array'), ('mobile_network_code', 'array'),
        ('in_list', 'array'), ('not', 'object'), ('any', 'array'), ('all', 'array')) AS k(key, kind);
END;

-- Raises unless `cond` is a valid condition: an object of known keys (at least one), each
-- with a value of its type and form; `not`, `any` and `all` nest to a depth of 8.
CREATE FUNCTION @extschema@._ip_inventory_tag_check(cond jsonb, depth int DEFAULT 0)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    v jsonb;
    want text;
    e jsonb;
    s text;
    hint text := 'A condition is a JSON object of these keys (all must match): '
        || (SELECT string_agg(t.key || ' (' || t.kind || ')', ', ') FROM @extschema@._ip_inventory_tag_keys() AS t)
        || '. See docs/tags.md.';
BEGIN
    IF depth > 8 THEN
        RAISE EXCEPTION 'tag rule condition nests deeper than 8 levels' USING ERRCODE = '54000';
    END IF;
    IF cond IS NULL OR jsonb_typeof(cond) <> 'object' THEN
        RAISE EXCEPTION 'tag rule condition must be a JSON object, not %', coalesce(jsonb_typeof(cond), 'NULL')
            USING ERRCODE = '22023', HINT = hint;
    END IF;
    IF cond = '{}' THEN
        RAISE EXCEPTION 'tag rule condition is empty' USING ERRCODE = '22023',
            HINT = 'A rule must say which addresses it tags, e.g. {"country": ["CN"]}.';
    END IF;
    IF depth = 0 AND octet_length(cond::text) > 65536 THEN
        RAISE EXCEPTION 'tag rule condition is longer than 64 kB' USING ERRCODE = '54000';
    END IF;
    FOR k, v IN SELECT x.key, x.value FROM jsonb_each(cond) AS x LOOP
        SELECT t.kind INTO want FROM @extschema@._ip_inventory_tag_keys() AS t WHERE t.key = k;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown key "%" in tag rule condition', left(k, 64) USING ERRCODE = '22023', HINT = hint;
        END IF;
        IF jsonb_typeof(v) <> want THEN
            RAISE EXCEPTION 'tag rule condition key "%" takes a JSON %, not %', k, want, jsonb_typeof(v)
                USING ERRCODE = '22023', HINT = hint;
        END IF;
        IF want = 'array' AND (jsonb_array_length(v) = 0 OR jsonb_array_length(v) > 10000) THEN
            RAISE EXCEPTION 'tag rule condition key "%" takes 1 to 10000 values, not %', k, jsonb_array_length(v)
                USING ERRCODE = '22023';
        END IF;
        IF k IN ('any', 'all') THEN
            FOR e IN SELECT jsonb_array_elements(v) LOOP
                PERFORM @extschema@._ip_inventory_tag_check(e, depth + 1);
            END LOOP;
        ELSIF k = 'not' THEN
            PERFORM @extschema@._ip_inventory_tag_check(v, depth + 1);
        ELSIF k IN ('rdns_regex', 'isp_regex') THEN
            s := v #>> '{}';
            IF s = '' OR octet_length(s) > 256 THEN
                RAISE EXCEPTION '% must be 1 to 256 bytes', k USING ERRCODE = '22023';
            END IF;
            -- Back-references are the one feature that makes matching exponential.
            IF s ~ '\\[1-9]' THEN
                RAISE EXCEPTION '% must not use back-references (\1 ... \9)', k USING ERRCODE = '2201B',
                    HINT = CASE k WHEN 'rdns_regex' THEN 'Write the alternatives out: rules are matched against every reverse DNS name.'
                                  ELSE 'Write the alternatives out: rules are matched against every ISP name.' END;
            END IF;
            BEGIN
                PERFORM 'probe' ~* s;
            EXCEPTION WHEN invalid_regular_expression OR program_limit_exceeded THEN
                RAISE EXCEPTION '% "%" is not a valid regular expression: %', k, left(s, 64), SQLERRM
                    USING ERRCODE = '2201B', HINT = 'A POSIX regular expression (PostgreSQL ~*), matched case-insensitively.';
            END;
        ELSIF want = 'array' THEN
            FOR e IN SELECT jsonb_array_elements(v) LOOP
                s := CASE WHEN jsonb_typeof(e) = 'string' THEN e #>> '{}' END;
                IF NOT coalesce((CASE k
                    WHEN 'country' THEN s ~ '^[A-Z]{2}$'
                    WHEN 'asn' THEN jsonb_typeof(e) = 'number' AND (e #>> '{}') ~ '^[0-9]{1,10}$'
                                    AND (e #>> '{}')::numeric <= 4294967295
                    WHEN 'ip_class' THEN s ~ '^[a-z0-9_]{1,32}$'
                    WHEN 'greynoise_classification' THEN s ~ '^[a-z_]{1,32}$'
                    WHEN 'in_list' THEN s ~ '^[a-z][a-z0-9_]{0,62}$'
                    WHEN 'network' THEN s ~ '^[0-9a-fA-F.:]{2,39}(/[0-9]{1,3})?$'
                    WHEN 'isp' THEN octet_length(s) BETWEEN 1 AND 256
                    -- MaxMind's values, exactly: a misspelt one would silently match nothing.
                    WHEN 'connection_type' THEN s IN ('Cable/DSL', 'Cellular', 'Corporate', 'Satellite', 'Dialup')
                    WHEN 'mobile_country_code' THEN s ~ '^[0-9]{3}$'
                    WHEN 'mobile_network_code' THEN s ~ '^[0-9]{2,3}$'
                    ELSE false END), false) THEN
                    RAISE EXCEPTION 'tag rule condition key "%" has an invalid value %', k, left(e::text, 64)
                        USING ERRCODE = '22023',
                        HINT = CASE k WHEN 'country' THEN 'ISO country codes in upper case, e.g. ["CN", "RU"].'
                                      WHEN 'asn' THEN 'AS numbers as JSON numbers, e.g. [4134, 14061].'
                                      WHEN 'ip_class' THEN 'Classes as ip_class() names them, e.g. ["public"].'
                                      WHEN 'greynoise_classification' THEN 'e.g. ["malicious", "unknown"].'
                                      WHEN 'in_list' THEN 'Names of network lists (ip_inventory_lists).'
                                      WHEN 'isp' THEN 'ISP names exactly as ip_isp() gives them (1 to 256 bytes), e.g. ["Verizon Wireless"]; isp_regex matches a pattern.'
                                      WHEN 'connection_type' THEN 'One or more of "Cable/DSL", "Cellular", "Corporate", "Satellite", "Dialup" (as ip_connection_type() gives them).'
                                      WHEN 'mobile_country_code' THEN 'Mobile country codes (MCC) as strings of 3 digits, e.g. ["310"].'
                                      WHEN 'mobile_network_code' THEN 'Mobile network codes (MNC) as strings of 2 or 3 digits, e.g. ["004"].'
                                      ELSE 'Networks in CIDR notation, e.g. ["192.0.2.0/24"].' END;
                END IF;
                IF k = 'network' THEN
                    BEGIN
                        PERFORM s::cidr;
                    EXCEPTION WHEN invalid_text_representation THEN
                        RAISE EXCEPTION 'tag rule condition key "network" has an invalid network %', left(s, 64)
                            USING ERRCODE = '22023', HINT = 'Networks in CIDR notation without host bits, e.g. ["192.0.2.0/24"].';
                    END;
                ELSIF k = 'in_list' AND NOT EXISTS (SELECT FROM @extschema@.ip_inventory_lists AS l WHERE l.list_name = s) THEN
                    RAISE EXCEPTION 'network list "%" is not registered', s USING ERRCODE = '42704',
                        HINT = 'Register it first with ip_list_register(); SELECT list_name FROM ip_inventory_lists; lists the registered ones.';
                END IF;
            END LOOP;
        END IF;
    END LOOP;
END $$;

-- A valid condition as a boolean SQL expression over the inventory row `inv`, true or
-- false (never NULL, so that `not` is plain negation). Values enter only as quoted literals.
CREATE FUNCTION @extschema@._ip_inventory_tag_condition_sql(cond jsonb)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    v jsonb;
    parts text[] := '{}';
    vals text;
    e jsonb;
    sub text[];
BEGIN
    FOR k, v IN SELECT x.key, x.value FROM jsonb_each(cond) AS x ORDER BY x.key LOOP
        IF jsonb_typeof(v) = 'array' AND k NOT IN ('any', 'all') THEN
            vals := ARRAY(SELECT jsonb_array_elements_text(v))::text;
        END IF;
        parts := parts || CASE k
            WHEN 'country' THEN format('(inv.geo_country OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'asn' THEN format('(inv.asn_number OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.int8[])) IS TRUE', vals)
            WHEN 'ip_class' THEN format('(inv.ip_class OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'network' THEN format('(inv.ip_address OPERATOR(pg_catalog.<<=) ANY (%L::pg_catalog.inet[])) IS TRUE', vals)
            WHEN 'greynoise_classification' THEN format(
                '(inv.enrichment OPERATOR(pg_catalog.->) ''greynoise'' OPERATOR(pg_catalog.->>) ''classification'' OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'greynoise_noise' THEN format(
                '(inv.enrichment OPERATOR(pg_catalog.->) ''greynoise'' OPERATOR(pg_catalog.->) ''noise'' OPERATOR(pg_catalog.=) %L::pg_catalog.jsonb) IS TRUE', v::text)
            WHEN 'greynoise_riot' THEN format(
                '(inv.enrichment OPERATOR(pg_catalog.->) ''greynoise'' OPERATOR(pg_catalog.->) ''riot'' OPERATOR(pg_catalog.=) %L::pg_catalog.jsonb) IS TRUE', v::text)
            WHEN 'rdns_regex' THEN format(
                '(inv.enrichment OPERATOR(pg_catalog.->) ''rdns'' OPERATOR(pg_catalog.->>) ''name'' OPERATOR(pg_catalog.~*) %L::pg_catalog.text) IS TRUE', v #>> '{}')
            WHEN 'isp' THEN format('(inv.isp OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'isp_regex' THEN format('(inv.isp OPERATOR(pg_catalog.~*) %L::pg_catalog.text) IS TRUE', v #>> '{}')
            WHEN 'connection_type' THEN format('(inv.connection_type OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'mobile_country_code' THEN format('(inv.mobile_country_code OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'mobile_network_code' THEN format('(inv.mobile_network_code OPERATOR(pg_catalog.=) ANY (%L::pg_catalog.text[])) IS TRUE', vals)
            WHEN 'in_list' THEN (
                -- A list unregistered since the rule was written matches nothing (its
                -- registration is read once per statement: an InitPlan).
                SELECT '(' || string_agg(format(
                    '(CASE WHEN (SELECT EXISTS (SELECT FROM @extschema@.ip_inventory_lists AS l WHERE l.list_name OPERATOR(pg_catalog.=) %L::pg_catalog.text))'
                    ' THEN @extschema@.ip_list_contains(inv.ip_address, %L::pg_catalog.text) END) IS TRUE', n, n), ' OR ') || ')'
                FROM jsonb_array_elements_text(v) AS n)
            WHEN 'not' THEN format('(NOT %s)', @extschema@._ip_inventory_tag_condition_sql(v))
            WHEN 'any' THEN (SELECT '(' || string_agg(@extschema@._ip_inventory_tag_condition_sql(x), ' OR ') || ')'
                             FROM jsonb_array_elements(v) AS x)
            WHEN 'all' THEN (SELECT '(' || string_agg(@extschema@._ip_inventory_tag_condition_sql(x), ' AND ') || ')'
                             FROM jsonb_array_elements(v) AS x)
            ELSE format('(inv.%I IS NOT DISTINCT FROM %L::pg_catalog.bool)', k, v::text) END;
    END LOOP;
    RETURN '(' || array_to_string(parts, ' AND ') || ')';
END $$;

-- Event conditions (an event rule's "event" key, docs/tags.md): one object or an array of
-- them (all must match), each {"column": c, "eq": v} | {"column": c, "in": [v, ...]} |
-- {"column": c, "not_in": [v, ...]} | {"column": c, "min": n, "max": n} (min, max or both;
-- numeric columns). The column's type decides which JSON scalars it takes; only columns of
-- these built-in types, so that comparing them runs built-in operators and input functions
-- only (a domain's check or a user type's operator would be code the rule writer chose to
-- run in every reader's query).
CREATE FUNCTION @extschema@._ip_inventory_tag_event_kind(t regtype)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN t IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype, 'pg_catalog.numeric'::pg_catalog.regtype,
                       'pg_catalog.float4'::pg_catalog.regtype, 'pg_catalog.float8'::pg_catalog.regtype) THEN 'number'
            WHEN t IN ('pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.varchar'::pg_catalog.regtype, 'pg_catalog.bpchar'::pg_catalog.regtype,
                       'pg_catalog.inet'::pg_catalog.regtype, 'pg_catalog.cidr'::pg_catalog.regtype) THEN 'string'
            WHEN t = 'pg_catalog.bool'::pg_catalog.regtype THEN 'boolean' END;

-- Raises unless `ev` is a valid event condition over the columns of `tbl`.
CREATE FUNCTION @extschema@._ip_inventory_tag_event_check(tbl regclass, ev jsonb)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c jsonb;
    col text;
    typ regtype;
    want text;
    ops text[];
    v jsonb;
    hint text := 'An event condition is {"column": "dst_port", "in": [22, 2222]}, "eq": v, "not_in": [...] or "min"/"max": n, or an array of them (all must match). See docs/tags.md.';
BEGIN
    IF tbl IS NULL OR NOT EXISTS (SELECT FROM pg_class AS r WHERE r.oid = tbl AND r.relkind IN ('r', 'p', 'f', 'v', 'm')) THEN
        RAISE EXCEPTION 'an event rule needs an existing event table' USING ERRCODE = '42P01',
            HINT = 'Set event_table to the attached table whose events it tags, e.g. ''sensors.events''.';
    END IF;
    IF jsonb_typeof(ev) NOT IN ('object', 'array') OR ev IN ('[]', '{}') THEN
        RAISE EXCEPTION 'tag rule key "event" takes an object or a non-empty array of objects' USING ERRCODE = '22023', HINT = hint;
    END IF;
    IF jsonb_typeof(ev) = 'array' AND jsonb_array_length(ev) > 64 THEN
        RAISE EXCEPTION 'tag rule key "event" takes at most 64 conditions' USING ERRCODE = '54000';
    END IF;
    FOR c IN SELECT CASE WHEN jsonb_typeof(ev) = 'array' THEN x ELSE ev END
             FROM jsonb_array_elements(CASE WHEN jsonb_typeof(ev) = 'array' THEN ev ELSE '[null]' END) AS x LOOP
        IF jsonb_typeof(c) IS DISTINCT FROM 'object' OR jsonb_typeof(c -> 'column') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'an event condition must be an object with a "column" string' USING ERRCODE = '22023', HINT = hint;
        END IF;
        ops := ARRAY(SELECT k FROM jsonb_object_keys(c) AS k WHERE k <> 'column' ORDER BY k);
        IF NOT (ops IN ('{eq}', '{in}', '{not_in}', '{min}', '{max}', '{max,min}')) THEN
            RAISE EXCEPTION 'event condition on "%" has the operators %: give one of eq, in, not_in, or min and/or max',
                left(c ->> 'column', 64), left(ops::text, 100) USING ERRCODE = '22023', HINT = hint;
        END IF;
        col := c ->> 'column';
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute AS a
        WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of % does not exist', left(col, 64), tbl USING ERRCODE = '42703';
        END IF;
        want := @extschema@._ip_inventory_tag_event_kind(typ);
        IF want IS NULL THEN
            RAISE EXCEPTION 'column "%" of % is %: event conditions take numbers, text, inet, cidr and boolean columns',
                col, tbl, typ USING ERRCODE = '42804', HINT = 'Domains and user-defined types are refused: filter the enriched view instead.';
        END IF;
        IF ops && '{min,max}' AND want <> 'number' THEN
            RAISE EXCEPTION 'column "%" of % is %: min and max take numeric columns', col, tbl, typ USING ERRCODE = '42804';
        END IF;
        IF ops && '{in,not_in}' AND (jsonb_typeof(c -> ops[1]) <> 'array' OR jsonb_array_length(c -> ops[1]) NOT BETWEEN 1 AND 10000) THEN
            RAISE EXCEPTION 'event condition "%" on "%" takes an array of 1 to 10000 values', ops[1], col USING ERRCODE = '22023', HINT = hint;
        END IF;
        FOR v IN SELECT x FROM jsonb_array_elements(c -> 'in') AS x
                 UNION ALL SELECT x FROM jsonb_array_elements(c -> 'not_in') AS x
                 UNION ALL SELECT c -> 'eq' WHERE c ? 'eq'
                 UNION ALL SELECT c -> 'min' WHERE c ? 'min'
                 UNION ALL SELECT c -> 'max' WHERE c ? 'max' LOOP
            IF jsonb_typeof(v) <> want THEN
                RAISE EXCEPTION 'column "%" of % is %: it takes JSON %s, not %', col, tbl, typ, want, left(v::text, 64)
                    USING ERRCODE = '42804';
            END IF;
            -- The view casts the value to the column's type: it must be one.
            BEGIN
                EXECUTE format('SELECT %L::%s', v #>> '{}', format_type(typ, NULL));
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'value % is not a valid % for column "%" of %: %', left(v::text, 64), typ, col, tbl, SQLERRM
                    USING ERRCODE = '22P02';
            END;
        END LOOP;
    END LOOP;
END $$;

-- Whether an event condition is (still) valid over the table's columns: a rule written
-- before its table changed (a column dropped, or of another type when the view was
-- re-created) matches nothing rather than breaking its table's view.
CREATE FUNCTION @extschema@._ip_inventory_tag_event_ok(tbl regclass, ev jsonb)
RETURNS boolean LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM @extschema@._ip_inventory_tag_event_check(tbl, ev);
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RETURN false;
END $$;

-- A valid event condition as a boolean SQL expression over the event row `e`, true or false;
-- every value a quoted literal cast to the column's type (read from pg_attribute now), every
-- operator pg_catalog's.
CREATE FUNCTION @extschema@._ip_inventory_tag_event_sql(tbl regclass, ev jsonb)
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT '(' || string_agg(
            (SELECT CASE
                WHEN c ? 'eq' THEN format('(e.%I OPERATOR(pg_catalog.=) %L::%s) IS TRUE', c ->> 'column', c ->> 'eq', t.typ)
                WHEN c ? 'in' THEN format('(e.%I OPERATOR(pg_catalog.=) ANY (ARRAY[%s])) IS TRUE', c ->> 'column',
                    (SELECT string_agg(format('%L::%s', x, t.typ), ', ') FROM jsonb_array_elements_text(c -> 'in') AS x))
                WHEN c ? 'not_in' THEN format('(e.%I OPERATOR(pg_catalog.<>) ALL (ARRAY[%s])) IS TRUE', c ->> 'column',
                    (SELECT string_agg(format('%L::%s', x, t.typ), ', ') FROM jsonb_array_elements_text(c -> 'not_in') AS x))
                ELSE '(' || concat_ws(' AND ',
                    CASE WHEN c ? 'min' THEN format('(e.%I OPERATOR(pg_catalog.>=) %L::%s) IS TRUE', c ->> 'column', c ->> 'min', t.typ) END,
                    CASE WHEN c ? 'max' THEN format('(e.%I OPERATOR(pg_catalog.<=) %L::%s) IS TRUE', c ->> 'column', c ->> 'max', t.typ) END) || ')'
                END
             FROM (SELECT format_type(a.atttypid, NULL) AS typ FROM pg_attribute AS a
                   WHERE a.attrelid = tbl AND a.attname = c ->> 'column' AND NOT a.attisdropped) AS t),
            ' AND ') || ')'
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(ev) = 'array' THEN ev ELSE jsonb_build_array(ev) END) AS c);

-- The event tags of the enabled event rules of `tbl` over the event row `e` and the inventory
-- row `inv_alias` (an address column's join in the enriched view): a subquery giving the
-- sorted tags and {tag: highest confidence}; NULL when the table has no enabled event rule.
-- A column a rule names that was dropped or changed type since makes the rule match nothing.
CREATE FUNCTION @extschema@._ip_inventory_tag_event_tags_sql(tbl regclass, inv_alias text)
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT '(SELECT coalesce(pg_catalog.array_agg(r.tag ORDER BY r.tag), ''{}''::pg_catalog.text[]) AS tags,'
               || ' coalesce(pg_catalog.jsonb_object_agg(r.tag, r.confidence), ''{}''::pg_catalog.jsonb) AS tag_confidence'
               || ' FROM (SELECT v.tag, pg_catalog.max(v.confidence) AS confidence FROM (SELECT '
               || quote_ident(inv_alias) || '.*) AS inv, LATERAL (VALUES '
               || string_agg(format('(%L::pg_catalog.text, %L::pg_catalog.numeric, %s AND %s)', t.tag, t.confidence,
                                    CASE WHEN t.condition - 'event' = '{}' THEN 'true'
                                         ELSE @extschema@._ip_inventory_tag_condition_sql(t.condition - 'event') END,
                                    CASE WHEN @extschema@._ip_inventory_tag_event_ok(tbl, t.condition -> 'event')
                                         THEN @extschema@._ip_inventory_tag_event_sql(tbl, t.condition -> 'event')
                                         ELSE 'false' END), ', ' ORDER BY t.rule_id)
               || ') AS v(tag, confidence, hit) WHERE v.hit GROUP BY v.tag) AS r)'
        FROM @extschema@.ip_inventory_tag_rules AS t
        WHERE t.enabled AND t.event_table = tbl);

-- The tagging expression of the enabled rules: a subquery over the row `inv` giving its
-- sorted tags and {tag: highest confidence}. NULL when no rule is enabled.
CREATE FUNCTION @extschema@._ip_inventory_tag_sql()
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT '(SELECT coalesce(pg_catalog.array_agg(r.tag ORDER BY r.tag), ''{}''::pg_catalog.text[]) AS tags,'
               || ' coalesce(pg_catalog.jsonb_object_agg(r.tag, r.confidence), ''{}''::pg_catalog.jsonb) AS tag_confidence'
               || ' FROM (SELECT v.tag, pg_catalog.max(v.confidence) AS confidence FROM (VALUES '
               || string_agg(format('(%L::pg_catalog.text, %L::pg_catalog.numeric, %s)', t.tag, t.confidence,
                                    @extschema@._ip_inventory_tag_condition_sql(t.condition)), ', ' ORDER BY t.rule_id)
               || ') AS v(tag, confidence, hit) WHERE v.hit GROUP BY v.tag) AS r)'
        FROM @extschema@.ip_inventory_tag_rules AS t WHERE t.enabled AND t.event_table IS NULL);

-- Checks a rule as it is written (BEFORE INSERT OR UPDATE, as the writer).
CREATE FUNCTION @extschema@._ip_inventory_tag_rule_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.event_table IS NULL THEN
        IF NEW.condition ? 'event' THEN
            RAISE EXCEPTION 'tag rule condition key "event" needs an event table' USING ERRCODE = '22023',
                HINT = 'Set event_table to the attached table whose columns the "event" condition names.';
        END IF;
        PERFORM @extschema@._ip_inventory_tag_check(NEW.condition);
    ELSE
        IF jsonb_typeof(NEW.condition) IS DISTINCT FROM 'object' OR NOT NEW.condition ? 'event' THEN
            RAISE EXCEPTION 'an event rule (event_table %) needs an "event" key in its condition', NEW.event_table
                USING ERRCODE = '22023', HINT = 'e.g. {"event": {"column": "dst_port", "in": [22, 2222]}}; see docs/tags.md.';
        END IF;
        IF NEW.condition - 'event' <> '{}' THEN
            PERFORM @extschema@._ip_inventory_tag_check(NEW.condition - 'event');
            -- The enriched view runs as its reader, who need not read the network lists.
            IF jsonb_path_exists(NEW.condition - 'event', 'strict $.** ? (@.type() == "object" && exists(@.in_list))') THEN
                RAISE EXCEPTION 'an event rule cannot use in_list' USING ERRCODE = '0A000',
                    HINT = 'Tag the listed addresses with an address rule and filter the enriched view by <prefix>_tags.';
            END IF;
        END IF;
        IF TG_OP = 'INSERT' AND NEW.created_at < transaction_timestamp() THEN
            -- A rule reloaded with its history (pg_restore): its table may have changed since
            -- it was written. It then matches nothing (its view compiles it as false:
            -- _ip_inventory_tag_event_ok) rather than failing the restore of every rule.
            IF NOT @extschema@._ip_inventory_tag_event_ok(NEW.event_table, NEW.condition -> 'event') THEN
                RAISE WARNING 'event rule % (tag %) does not fit % any more and matches nothing', NEW.rule_id, NEW.tag, NEW.event_table
                    USING HINT = 'Fix its condition or delete it: SELECT * FROM ip_inventory_tag_rules WHERE event_table IS NOT NULL;';
            END IF;
        ELSE
            PERFORM @extschema@._ip_inventory_tag_event_check(NEW.event_table, NEW.condition -> 'event');
        END IF;
    END IF;
    IF EXISTS (SELECT FROM @extschema@.ip_inventory_tag_rules AS r
               WHERE r.tag = NEW.tag AND r.rule_id <> NEW.rule_id
                 AND r.attack_type IS DISTINCT FROM NEW.attack_type) THEN
        RAISE EXCEPTION 'tag "%" already has another attack type', NEW.tag USING ERRCODE = '23514',
            HINT = 'Every rule giving a tag names the same attack_type: SELECT rule_id, attack_type FROM ip_inventory_tag_rules WHERE tag = ...;';
    END IF;
    -- An insert keeps what it gives (pg_restore reloads the rules with their history).
    IF TG_OP = 'UPDATE' THEN
        NEW.created_by := OLD.created_by;
        NEW.created_at := OLD.created_at;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

-- The tagging statement of the rules in force. _ip_inventory_tag_rules_changed replaces this
-- body with the UPDATE of the compiled rules and their generation (as literals), so that a
-- session plans it once (plpgsql caches the plan), not at every batch or recording
-- statement. As installed (no rule yet), it tags nothing.
CREATE FUNCTION @extschema@._ip_inventory_tag_apply(ips inet[]) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN 0;
END $$;

-- A new generation of the rules: their compiled expression and _ip_inventory_tag_apply's
-- body, every inventory row stale (ip_inventory_retag). Returns the event tables named by an
-- enabled event rule before or after. Called by the rules' trigger and, when a network list
-- a rule names changes, by _ip_inventory_tag_list_changed. SECURITY DEFINER: the state and
-- the function are the extension's; it compiles the rules (values as quoted literals, the
-- body as one quoted literal) and runs none of them.
CREATE FUNCTION @extschema@._ip_inventory_tag_recompile() RETURNS regclass[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g bigint;
    c text;
    old_tables regclass[];
    new_tables regclass[];
BEGIN
    -- Rule changes in two sessions compile one after the other: the state row is locked
    -- first, in a statement of its own, so that (READ COMMITTED) the statements below take
    -- their snapshot after the other session's commit and compile its rules too. Without
    -- it, the later session compiled from a snapshot older than the other's change (a rule
    -- lost, or a deleted one kept: pg_tests/chaos.py, part rules).
    PERFORM FROM @extschema@.ip_inventory_tag_state AS s FOR UPDATE;
    SELECT s.event_tables INTO old_tables FROM @extschema@.ip_inventory_tag_state AS s;
    UPDATE @extschema@.ip_inventory_tag_state AS s SET
        generation = s.generation + 1,
        enabled_rules = (SELECT count(*) FROM @extschema@.ip_inventory_tag_rules AS r WHERE r.enabled AND r.event_table IS NULL),
        compiled = @extschema@._ip_inventory_tag_sql(),
        changed_at = now(),
        event_tables = ARRAY(SELECT DISTINCT r.event_table FROM @extschema@.ip_inventory_tag_rules AS r
                             WHERE r.enabled AND r.event_table IS NOT NULL ORDER BY 1)
    RETURNING s.generation, s.compiled, s.event_tables INTO g, c, new_tables;
    EXECUTE format('CREATE OR REPLACE FUNCTION @extschema@._ip_inventory_tag_apply(ips pg_catalog.inet[]) RETURNS pg_catalog.int8'
                   ' LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS %L',
        CASE WHEN c IS NULL THEN E'\nBEGIN\n    RETURN 0;\nEND ' ELSE format($body$
DECLARE
    written pg_catalog.int8;
BEGIN
    -- Generated from ip_inventory_tag_rules, generation %1$s.
    UPDATE @extschema@.ip_inventory AS cur SET
        tags = t.tags, tag_confidence = t.tag_confidence, tags_generation = %1$s
    FROM (SELECT inv.ip_address, x.tags, x.tag_confidence
          FROM @extschema@.ip_inventory AS inv, LATERAL %2$s AS x
          WHERE inv.ip_address OPERATOR(pg_catalog.=) ANY (ips)) AS t
    WHERE cur.ip_address OPERATOR(pg_catalog.=) t.ip_address
      AND (cur.tags IS DISTINCT FROM t.tags OR cur.tag_confidence IS DISTINCT FROM t.tag_confidence
           OR cur.tags_generation IS DISTINCT FROM %1$s);
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END $body$, g, c) END);
    RETURN old_tables || new_tables;
END $$;

-- After any change of the rules (a statement trigger): a new generation, and the enriched
-- views of the tables whose event rules may have changed. SECURITY DEFINER, as above.
CREATE FUNCTION @extschema@._ip_inventory_tag_rules_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tables regclass[];
    t regclass;
BEGIN
    tables := @extschema@._ip_inventory_tag_recompile();
    -- Event rules are compiled into the enriched views of their tables: the views of the
    -- tables named before or after the change are replaced (CREATE OR REPLACE, as each
    -- table's owner; grants on them stay).
    FOR t IN SELECT DISTINCT o.event_table FROM @extschema@.ip_inventory_observed AS o
             WHERE o.event_table = ANY (tables) AND cardinality(o.enriched_views) > 0
             ORDER BY 1 LOOP
        PERFORM @extschema@._ip_inventory_enriched_view_refresh(t);
    END LOOP;
    RETURN NULL;
END $$;

-- A statement changed the networks of a list table (its trigger, src/lists.rs, calls this as
-- the extension's owner), or a list was registered or unregistered: when an enabled address
-- rule names that list, a new generation makes every row stale, and the next
-- ip_inventory_retag() (the pg_cron job of docs/tags.md) re-tags them in batches. One check
-- per statement, nothing per listed network, one new generation per transaction: a COPY of
-- 100k networks, or 100k single-row INSERTs in one transaction, cost one generation.
-- Event rules cannot use lists, so no view changes.
CREATE FUNCTION @extschema@._ip_inventory_tag_list_changed(changed_table regclass, changed_list text)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Once per transaction: after the generation moved in it, the rows it tags stay stale
    -- (_ip_inventory_tag), so its later list changes need no new one. (The state row's xmin
    -- is this transaction's only when the top level moved it; a subtransaction's move is
    -- simply moved again.)
    IF EXISTS (SELECT FROM @extschema@.ip_inventory_tag_state AS s
               WHERE s.xmin::text = (pg_catalog.txid_current_if_assigned() % 4294967296)::text) THEN
        RETURN true;
    END IF;
    IF NOT EXISTS (
        SELECT FROM @extschema@.ip_inventory_tag_rules AS r
        WHERE r.enabled AND r.event_table IS NULL
          AND EXISTS (SELECT FROM jsonb_path_query(r.condition, 'strict $.** ? (@.type() == "object" && exists(@.in_list)).in_list[*]') AS n(v)
                      WHERE n.v #>> '{}' = changed_list
                         OR n.v #>> '{}' IN (SELECT l.list_name FROM @extschema@.ip_inventory_lists AS l
                                             WHERE l.list_table = changed_table))) THEN
        RETURN false;
    END IF;
    PERFORM @extschema@._ip_inventory_tag_recompile();
    RETURN true;
END $$;

CREATE TRIGGER ip_inventory_tag_rule_check BEFORE INSERT OR UPDATE ON @extschema@.ip_inventory_tag_rules
    FOR EACH ROW EXECUTE FUNCTION @extschema@._ip_inventory_tag_rule_check();
CREATE TRIGGER ip_inventory_tag_rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.ip_inventory_tag_rules
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._ip_inventory_tag_rules_changed();

-- Tags the given rows by the enabled rules, writing only rows whose tags or generation
-- change; returns how many it wrote. Called after each enrichment of the rows (the caller
-- holds their locks) and by ip_inventory_retag. Nothing to do, and one read of the state
-- row, while no rule is enabled. SECURITY DEFINER: list lookups need SELECT on the list
-- tables, which the extension's owner has, whichever job enriches. A distributed inventory
-- (Citus) is tagged on the coordinator (_ip_inventory_citus_tag, sql/citus.sql); a worker
-- tags nothing: the rows it writes stay stale for the coordinator (docs/tags.md).
CREATE FUNCTION @extschema@._ip_inventory_tag(ips inet[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    enabled int;
    moved_here boolean;
    written bigint;
BEGIN
    IF ips IS NULL OR cardinality(ips) = 0 THEN
        RETURN 0;
    END IF;
    SELECT s.enabled_rules, s.xmin::text = (pg_catalog.txid_current_if_assigned() % 4294967296)::text
      INTO enabled, moved_here FROM @extschema@.ip_inventory_tag_state AS s;
    IF enabled = 0 THEN
        RETURN 0;
    END IF;
    IF @extschema@._ip_inventory_citus_distributed() THEN
        IF NOT @extschema@._ip_inventory_citus_on_coordinator() THEN
            RETURN 0;
        END IF;
        written := @extschema@._ip_inventory_citus_tag(ips);
    ELSE
        written := @extschema@._ip_inventory_tag_apply(ips);
    END IF;
    -- The generation moved in this transaction: a later list change in it starts no other
    -- (_ip_inventory_tag_list_changed), so these rows stay stale and the next retag tags them
    -- with what the transaction committed.
    IF moved_here THEN
        UPDATE @extschema@.ip_inventory AS inv SET tags_generation = NULL
        WHERE inv.ip_address = ANY (ips) AND inv.tags_generation IS NOT NULL;
    END IF;
    RETURN written;
END $$;

-- Whether a row's tags are out of date: computed under another generation of the rules
-- while some rule is enabled, or still holding tags when none is.
CREATE FUNCTION @extschema@._ip_inventory_tags_stale(tags text[], tags_generation bigint, generation bigint, enabled_rules int)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN enabled_rules > 0 THEN tags_generation IS DISTINCT FROM generation
            ELSE cardinality(tags) > 0 END;

-- Starts (or resumes) a retag: takes the job's lock, returns the job's row.
CREATE FUNCTION @extschema@._ip_inventory_retag_start(batch_size int, max_rows bigint)
RETURNS @extschema@.ip_inventory_jobs LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j @extschema@.ip_inventory_jobs;
    st record;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = '22023';
    END IF;
    IF max_rows < 0 THEN
        RAISE EXCEPTION 'max_rows must not be negative, not %', max_rows USING ERRCODE = '22023';
    END IF;
    IF @extschema@._ip_inventory_citus_distributed() THEN
        PERFORM @extschema@._ip_inventory_citus_require('ip_inventory_retag');
    END IF;
    PERFORM @extschema@._ip_inventory_job_start('retag'::text);
    INSERT INTO @extschema@.ip_inventory_jobs AS jb (job, status, started_at, run_started_at, updated_at)
    VALUES ('retag', 'running', clock_timestamp(), clock_timestamp(), clock_timestamp())
    ON CONFLICT (job) DO UPDATE SET
        status = 'running',
        started_at = CASE WHEN jb.status = 'finished' THEN clock_timestamp() ELSE jb.started_at END,
        done_rows = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.done_rows END,
        addresses = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.addresses END,
        batches = CASE WHEN jb.status = 'finished' THEN 0 ELSE jb.batches END,
        run_started_at = clock_timestamp(), run_done_rows = 0, finished_at = NULL;
    SELECT s.generation, s.enabled_rules INTO st FROM @extschema@.ip_inventory_tag_state AS s;
    -- (The state as values: Citus joins no local table with a distributed one.)
    UPDATE @extschema@.ip_inventory_jobs AS jb SET total_rows = jb.done_rows + least(max_rows, (
        SELECT count(*) FROM @extschema@.ip_inventory AS inv
        WHERE @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation, st.generation, st.enabled_rules)))
    WHERE jb.job = 'retag' RETURNING * INTO j;
    RETURN j;
END $$;

-- One batch of a retag: the next stale rows after after_ip, in address order, locked as
-- they are read (the order recorders lock them in), tagged by the rules in force. A
-- distributed inventory (Citus) has no row locks over shards: the batch is read unlocked and
-- tagged on the coordinator (_ip_inventory_citus_tag, which skips a row re-enriched meanwhile).
CREATE FUNCTION @extschema@._ip_inventory_retag_step(
    batch_size int, max_rows bigint, after_ip inet,
    OUT j @extschema@.ip_inventory_jobs, OUT last_ip inet, OUT done boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    batch inet[];
    written bigint;
    stopped boolean := false;
    st record;
    distributed boolean := @extschema@._ip_inventory_citus_distributed();
BEGIN
    SELECT * INTO STRICT j FROM @extschema@.ip_inventory_jobs AS jb WHERE jb.job = 'retag';
    SELECT s.generation, s.enabled_rules INTO st FROM @extschema@.ip_inventory_tag_state AS s;
    IF distributed THEN
        batch := ARRAY(
            SELECT inv.ip_address FROM @extschema@.ip_inventory AS inv
            WHERE (after_ip IS NULL OR inv.ip_address > after_ip)
              AND @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation, st.generation, st.enabled_rules)
            ORDER BY inv.ip_address
            LIMIT CASE WHEN max_rows IS NULL THEN batch_size
                       ELSE least(batch_size, max_rows - j.run_done_rows) END);
        IF cardinality(batch) = 0 THEN
            batch := NULL;
        END IF;
    ELSE
        SELECT array_agg(p.ip_address ORDER BY p.ip_address) INTO batch FROM (
            SELECT inv.ip_address FROM @extschema@.ip_inventory AS inv
            WHERE (after_ip IS NULL OR inv.ip_address > after_ip)
              AND @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation, st.generation, st.enabled_rules)
            ORDER BY inv.ip_address
            LIMIT CASE WHEN max_rows IS NULL THEN batch_size
                       ELSE least(batch_size, max_rows - j.run_done_rows) END
            FOR UPDATE OF inv
        ) AS p;
    END IF;
    last_ip := after_ip;
    IF batch IS NOT NULL THEN
        IF distributed THEN
            -- (With no rule enabled it clears the tags: the same values as below.)
            written := @extschema@._ip_inventory_citus_tag(batch);
        ELSIF st.enabled_rules > 0 THEN
            written := @extschema@._ip_inventory_tag(batch);
        ELSE
            UPDATE @extschema@.ip_inventory AS inv SET tags = '{}', tag_confidence = '{}', tags_generation = st.generation
            WHERE inv.ip_address = ANY (batch);
            GET DIAGNOSTICS written = ROW_COUNT;
        END IF;
        last_ip := batch[cardinality(batch)];
        stopped := max_rows IS NOT NULL AND j.run_done_rows + cardinality(batch) >= max_rows;
        UPDATE @extschema@.ip_inventory_jobs AS jb SET
            done_rows = jb.done_rows + cardinality(batch),
            run_done_rows = jb.run_done_rows + cardinality(batch),
            addresses = jb.addresses + written, batches = jb.batches + 1,
            updated_at = clock_timestamp()
        WHERE jb.job = 'retag' RETURNING * INTO j;
        PERFORM @extschema@._ip_inventory_job_notice(j);
    END IF;
    done := batch IS NULL OR stopped;
    IF done THEN
        UPDATE @extschema@.ip_inventory_jobs AS jb SET
            status = CASE WHEN stopped THEN 'stopped' ELSE 'finished' END,
            total_rows = CASE WHEN stopped THEN jb.total_rows ELSE jb.done_rows END,
            finished_at = CASE WHEN stopped THEN NULL ELSE clock_timestamp() END,
            updated_at = clock_timestamp()
        WHERE jb.job = 'retag' RETURNING * INTO j;
    END IF;
END $$;

CREATE FUNCTION @extschema@._ip_inventory_retag_summary(j @extschema@.ip_inventory_jobs)
RETURNS jsonb LANGUAGE sql SET search_path = pg_catalog, pg_temp
RETURN @extschema@._ip_inventory_job_summary(j, jsonb_build_object(
    'status', CASE WHEN j.status = 'stopped' THEN 'stopped at max_rows' ELSE 'finished' END,
    'rows', j.done_rows, 'retagged', j.addresses,
    'generation', (SELECT s.generation FROM @extschema@.ip_inventory_tag_state AS s)));

-- Re-tags, in address order and in batches committed one by one, the rows tagged under
-- another generation of the rules. Rows it finished are current, so a rerun after a crash or
-- cancel continues with what is left; a rule change during a run makes every row stale again
-- (run it again).
CREATE PROCEDURE @extschema@.ip_inventory_retag(
    batch_size int DEFAULT 10000, max_rows bigint DEFAULT NULL, INOUT summary jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    step record;
BEGIN
    PERFORM @extschema@._ip_inventory_retag_start(batch_size, max_rows);
    COMMIT;
    step := @extschema@._ip_inventory_retag_step(batch_size, max_rows, NULL::pg_catalog.inet);
    COMMIT;
    WHILE NOT step.done LOOP
        step := @extschema@._ip_inventory_retag_step(batch_size, max_rows, step.last_ip);
        COMMIT;
    END LOOP;
    summary := @extschema@._ip_inventory_retag_summary(step.j);
END $$;

-- Reports. By tag: addresses, events (their observations) and average confidence; the
-- attack type is the rules'.
CREATE VIEW @extschema@.ip_inventory_tag_report AS
SELECT t.tag, a.attack_type,
       count(*) AS addresses,
       sum(inv.observation_count)::bigint AS events,
       round(avg((inv.tag_confidence ->> t.tag)::numeric), 3) AS avg_confidence,
       round(sum((inv.tag_confidence ->> t.tag)::numeric * inv.observation_count)
             / nullif(sum(inv.observation_count), 0), 3) AS avg_event_confidence
FROM @extschema@.ip_inventory AS inv
CROSS JOIN LATERAL unnest(inv.tags) AS t(tag)
LEFT JOIN (SELECT DISTINCT ON (r.tag) r.tag, r.attack_type FROM @extschema@.ip_inventory_tag_rules AS r
           ORDER BY r.tag, r.enabled DESC, r.rule_id) AS a ON a.tag = t.tag
GROUP BY t.tag, a.attack_type;

-- By attack type: an address counts once per attack type, with the highest confidence of its
-- tags of that type.
CREATE VIEW @extschema@.ip_inventory_attack_type_report AS
SELECT per.attack_type,
       count(*) AS addresses,
       sum(per.observation_count)::bigint AS events,
       round(avg(per.confidence), 3) AS avg_confidence,
       round(sum(per.confidence * per.observation_count) / nullif(sum(per.observation_count), 0), 3) AS avg_event_confidence
FROM (SELECT inv.ip_address, inv.observation_count, a.attack_type,
             max((inv.tag_confidence ->> t.tag)::numeric) AS confidence
      FROM @extschema@.ip_inventory AS inv
      CROSS JOIN LATERAL unnest(inv.tags) AS t(tag)
      JOIN (SELECT DISTINCT ON (r.tag) r.tag, r.attack_type FROM @extschema@.ip_inventory_tag_rules AS r
            WHERE r.attack_type IS NOT NULL ORDER BY r.tag, r.enabled DESC, r.rule_id) AS a ON a.tag = t.tag
      GROUP BY inv.ip_address, inv.observation_count, a.attack_type) AS per
GROUP BY per.attack_type;

-- How current the tags are. (The state is read by uncorrelated subqueries: on a distributed
-- inventory, Citus reads them first and refuses a local table joined with the inventory.)
CREATE VIEW @extschema@.ip_inventory_tag_status AS
SELECT s.generation, s.enabled_rules, s.changed_at AS rules_changed_at,
       (SELECT count(*) FROM @extschema@.ip_inventory AS inv
        WHERE @extschema@._ip_inventory_tags_stale(inv.tags, inv.tags_generation,
                  (SELECT t.generation FROM @extschema@.ip_inventory_tag_state AS t),
                  (SELECT t.enabled_rules FROM @extschema@.ip_inventory_tag_state AS t))) AS stale_rows,
       (SELECT count(*) FROM @extschema@.ip_inventory AS inv WHERE cardinality(inv.tags) > 0) AS tagged_rows
FROM @extschema@.ip_inventory_tag_state AS s;

COMMENT ON FUNCTION @extschema@._ip_inventory_tag_keys() IS 'The keys of a tag rule condition and the JSON type of their values (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_check(jsonb, int) IS 'Raises unless the jsonb is a valid tag rule condition (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_condition_sql(jsonb) IS 'A valid tag rule condition as a boolean SQL expression over the inventory row inv, values as quoted literals (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_kind(regtype) IS 'The JSON type an event condition takes for a column type, NULL for types it refuses (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_check(regclass, jsonb) IS 'Raises unless the jsonb is a valid event condition over the table''s columns (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_ok(regclass, jsonb) IS 'Whether an event condition is still valid over the table''s columns (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_sql(regclass, jsonb) IS 'A valid event condition as a boolean SQL expression over the event row e, values as literals cast to the column types (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_event_tags_sql(regclass, text) IS 'The event-tag subquery of the enabled event rules of a table, for its enriched view (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_sql() IS 'The tagging subquery of the enabled rules over the inventory row inv (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_apply(inet[]) IS 'The tagging UPDATE of the rules in force, generated when the rules change (internal: _ip_inventory_tag).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_rule_check() IS 'Trigger: checks a tag rule as it is written (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_recompile() IS 'A new rules generation, compiled expression and tagging statement; returns the event tables of the enabled event rules before and after (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_rules_changed() IS 'Trigger: a new rules generation and compiled expression after any change of the rules, and the enriched views of their event tables replaced (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag_list_changed(regclass, text) IS 'A network list changed: a new rules generation when an enabled address rule names it, so that ip_inventory_retag re-tags (internal: the list tables'' trigger, ip_list_register, ip_list_unregister).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tag(inet[]) IS 'Tags the given inventory rows by the enabled rules, writing those whose tags change (internal: after enrichment, ip_inventory_retag).';
COMMENT ON FUNCTION @extschema@._ip_inventory_tags_stale(text[], bigint, bigint, int) IS 'Whether a row''s tags are out of date for the rules in force (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retag_start(int, bigint) IS 'Checks and starts or resumes a retag (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retag_step(int, bigint, inet) IS 'One batch of ip_inventory_retag (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_retag_summary(@extschema@.ip_inventory_jobs) IS 'The summary ip_inventory_retag returns (internal).';
COMMENT ON PROCEDURE @extschema@.ip_inventory_retag(int, bigint, jsonb) IS
    'Re-tags, in batches committed one by one, the inventory rows whose tags were computed under another generation of the tag rules. Resumable; run it after changing ip_inventory_tag_rules.';
COMMENT ON VIEW @extschema@.ip_inventory_tag_report IS
    'Per tag: its attack type, tagged addresses, their events (observation_count) and average confidence, per address and weighted by events.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.tag IS 'The tag.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.attack_type IS 'The attack type of the rules giving the tag.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.addresses IS 'Addresses with the tag.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.events IS 'Their observations in the attached event tables (sum of observation_count).';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.avg_confidence IS 'Average confidence of the tag over the addresses.';
COMMENT ON COLUMN @extschema@.ip_inventory_tag_report.avg_event_confidence IS 'Average confidence of the tag over the events (each address weighted by its observations).';
COMMENT ON VIEW @extschema@.ip_inventory_attack_type_report IS
    'Per attack type: addresses with a tag of that type, their events (observation_count) and average confidence (an address''s highest of its tags of that type), per address and weighted by events.';
COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.attack_type IS 'The attack type.';
COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.addresses IS 'Addresses with a tag of this attack type.';
COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.events IS 'Their observations (sum of observation_count).';
COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.avg_confidence IS 'Average confidence over the addresses.';
COMMENT ON COLUMN @extschema@.ip_inventory_attack_type_report.avg_event_confidence IS 'Average confidence over the events.';
COMMENT ON VIEW @extschema@.ip_inventory_tag_status IS
    'The tag rules'' generation, enabled rules, when they last changed, the rows whose tags are stale (run ip_inventory_retag()) and the tagged rows.';

-- Writing rules is for the extension's owner and the roles granted it (docs/tags.md); the
-- rules, the state and the reports are not PUBLIC. _ip_inventory_tag_check stays executable:
-- the rules' check trigger runs it as the writer.
REVOKE ALL ON @extschema@.ip_inventory_tag_rules FROM PUBLIC;
REVOKE ALL ON @extschema@.ip_inventory_tag_state FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_condition_sql(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_sql() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_event_sql(regclass, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_event_tags_sql(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_rules_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_recompile() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_list_changed(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag(inet[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_tag_apply(inet[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retag_start(int, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retag_step(int, bigint, inet) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_retag_summary(@extschema@.ip_inventory_jobs) FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@.ip_inventory_retag(int, bigint, jsonb) FROM PUBLIC;
