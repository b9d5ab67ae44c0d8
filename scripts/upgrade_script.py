#!/usr/bin/env python3
"""Assembles the upgrade script of the version being developed.

    scripts/upgrade_script.py SCHEMA.sql OUT.sql        (make upgrade-script)
    scripts/upgrade_script.py --check SCHEMA.sql OUT.sql (make test: fails when OUT is stale)

SCHEMA.sql is the fresh install script `cargo pgrx schema` generates. The upgrade script is
sql/upgrade/<from>--<to>/prologue.sql (hand-written: new tables and their data, renames, drops
of objects whose signature changed), then every function, procedure, view, comment and grant of
the fresh install as CREATE OR REPLACE (objects that hold no data are simply replaced), then
epilogue.sql (hand-written: drops of objects that are gone). pg_tests/sql/upgrade.sql proves
that the result equals a fresh install. Once a version is released its upgrade script is frozen:
delete its prologue/epilogue directory so this script is never run for it again.
"""
import re
import sys

KEEP = re.compile(r"^\s*(CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|VIEW)|COMMENT\s+ON|GRANT|REVOKE)\b", re.I)
# Tables, types, indexes, triggers and the rows an install script inserts are data: the
# prologue (or, for triggers on functions created by the body, the epilogue) writes them.
SKIP = re.compile(r"^\s*(CREATE\s+(TABLE|TYPE|INDEX|UNIQUE\s+INDEX|TRIGGER)|INSERT\s+INTO|SELECT\s+pg_catalog\.pg_extension_config_dump)\b", re.I)


def inside_atomic_body(stmt):
    """Whether a `;` ends a statement of a BEGIN ATOMIC ... END body, not the CREATE itself."""
    return re.search(r"\bBEGIN\s+ATOMIC\b", stmt, re.I) and not re.search(r"\bEND\s*$", stmt, re.I)


def statements(sql):
    """Top-level statements of a script, without comments between them."""
    out, buf, i, n = [], [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i)
            i = n if j < 0 else j + 2
            continue
        if c in "'\"":
            j = i + 1
            while j < n and not (sql[j] == c and sql[j + 1:j + 2] != c):
                j += 2 if sql[j] == c else 1
            buf.append(sql[i:j + 1])
            i = j + 1
            continue
        m = re.match(r"\$[A-Za-z_]*\$", sql[i:])
        if m:
            tag = m.group(0)
            j = sql.find(tag, i + len(tag))
            buf.append(sql[i:j + len(tag)])
            i = j + len(tag)
            continue
        if c == ";" and not inside_atomic_body("".join(buf)):
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    if "".join(buf).strip():
        raise SystemExit("upgrade_script.py: the schema does not end with a complete statement")
    return out


def replaceable(schema_sql):
    kept = []
    for stmt in statements(schema_sql):
        if SKIP.match(stmt):
            continue
        if not KEEP.match(stmt):
            raise SystemExit(f"upgrade_script.py: no rule for this statement; handle it in the prologue:\n{stmt[:300]}")
        stmt = re.sub(r"^\s*CREATE\s+(FUNCTION|PROCEDURE|VIEW)\b", r"CREATE OR REPLACE \1", stmt, flags=re.I)
        kept.append(stmt + ";")
    return kept


def assemble(schema_path, out_path):
    m = re.search(r"ip_inventory--([^-]+)--([^-]+)\.sql$", out_path)
    if not m:
        raise SystemExit(f"upgrade_script.py: {out_path} is not named ip_inventory--FROM--TO.sql")
    parts = out_path[: -len(".sql")].replace("sql/upgrade/ip_inventory--", "sql/upgrade/")
    prologue = open(f"{parts}/prologue.sql").read()
    epilogue = open(f"{parts}/epilogue.sql").read()
    body = "\n\n".join(replaceable(open(schema_path).read()))
    return (
        f"-- ip_inventory {m.group(1)} -> {m.group(2)}, run by ALTER EXTENSION ip_inventory UPDATE.\n"
        f"-- Assembled by scripts/upgrade_script.py from {parts}/prologue.sql, every function,\n"
        "-- procedure, view, comment and grant of a fresh install, and epilogue.sql; do not edit.\n"
        f"\\echo Use \"ALTER EXTENSION ip_inventory UPDATE TO '{m.group(2)}'\" to load this file. \\quit\n\n"
        f"{prologue.strip()}\n\n-- Every function, procedure, view, comment and grant of a fresh install.\n\n"
        f"{body}\n\n{epilogue.strip()}\n"
    )


def main():
    args = sys.argv[1:]
    check = args[:1] == ["--check"]
    if check:
        args = args[1:]
    if len(args) != 2:
        raise SystemExit(__doc__)
    text = assemble(*args)
    try:
        current = open(args[1]).read()
    except FileNotFoundError:
        current = ""
    # pgrx orders the schema by a dependency graph whose order varies between builds: any
    # order it gives is valid, so the same statements in another order are the same script.
    same = sorted(statements(current)) == sorted(statements(text))
    if check:
        if not same:
            raise SystemExit(f"{args[1]} is stale: the fresh install changed. Run make upgrade-script "
                             "(and extend its prologue/epilogue if the upgrade test says so).")
        print(f"{args[1]} is up to date")
    elif not same:
        open(args[1], "w").write(text)


if __name__ == "__main__":
    main()
