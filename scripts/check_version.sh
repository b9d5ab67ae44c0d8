#!/usr/bin/env bash
# The version is kept in one place, Cargo.toml's [workspace.package] version; this check
# (part of `make test`) fails when anything that repeats it disagrees:
#   - META.json: the distribution's version and provides.ip_inventory.version;
#   - CHANGELOG.md: the newest "## <version>" heading;
#   - ip_inventory.control: default_version is '@CARGO_VERSION@' (filled in by pgrx), and both
#     crates take the workspace version (version.workspace = true);
#   - sql/upgrade/: an upgrade script ip_inventory--<older>--<version>.sql exists, and every
#     upgrade script starts from a version pinned in sql/install/ or reached by another script.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 - <<'PY'
import json, os, re, sys, tomllib

errors = []
version = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"]
if not re.fullmatch(r"\d+\.\d+\.\d+", version):
    errors.append(f"Cargo.toml: version {version!r} is not MAJOR.MINOR.PATCH")

for manifest in ("Cargo.toml", "core/Cargo.toml"):
    package = tomllib.load(open(manifest, "rb"))["package"]
    if package.get("version") != {"workspace": True}:
        errors.append(f"{manifest}: [package] version must be `version.workspace = true`")

meta = json.load(open("META.json"))
if meta.get("version") != version:
    errors.append(f"META.json: version {meta.get('version')!r}, Cargo.toml has {version}")
provided = meta.get("provides", {}).get("ip_inventory", {})
if provided.get("version") != version:
    errors.append(f"META.json: provides.ip_inventory.version {provided.get('version')!r}, Cargo.toml has {version}")

headings = re.findall(r"^## (\S+)", open("CHANGELOG.md").read(), re.M)
if not headings or headings[0] != version:
    errors.append(f"CHANGELOG.md: newest heading {headings[0] if headings else None!r}, Cargo.toml has {version}")

control = open("ip_inventory.control").read()
if not re.search(r"^default_version = '@CARGO_VERSION@'$", control, re.M):
    errors.append("ip_inventory.control: default_version must be '@CARGO_VERSION@'")

pinned = {m.group(1) for f in os.listdir("sql/install")
          if (m := re.fullmatch(r"ip_inventory--([\d.]+)\.sql", f))}
upgrades = []
for f in sorted(os.listdir("sql/upgrade")):
    if os.path.isdir(os.path.join("sql/upgrade", f)):
        continue  # the parts of a script still being developed (scripts/upgrade_script.sh)
    m = re.fullmatch(r"ip_inventory--([\d.]+)--([\d.]+)\.sql", f)
    if not m:
        errors.append(f"sql/upgrade/{f}: not named ip_inventory--OLD--NEW.sql")
        continue
    upgrades.append(m.groups())
if version != "0.1.0" and not any(new == version for _, new in upgrades):
    errors.append(f"sql/upgrade: no script ends in {version} (ip_inventory--OLD--{version}.sql)")
reached = {new for _, new in upgrades}
for old, new in upgrades:
    if old not in pinned and old not in reached:
        errors.append(f"sql/upgrade/ip_inventory--{old}--{new}.sql: {old} is neither pinned in sql/install nor reached by another upgrade script")
    if new != version and not any(o == new for o, _ in upgrades):
        errors.append(f"sql/upgrade/ip_inventory--{old}--{new}.sql: nothing leads from {new} on to {version}")

if errors:
    print("version check FAILED:\n  " + "\n  ".join(errors))
    sys.exit(1)
print(f"version {version}: Cargo.toml, META.json, CHANGELOG.md, ip_inventory.control and "
      f"sql/upgrade agree ({len(upgrades)} upgrade script(s), pinned: {', '.join(sorted(pinned)) or 'none'})")
PY
