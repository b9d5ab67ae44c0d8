# The two entry points (see README.md). Both first run scripts/setup.sh, which installs what
# is missing (apt packages, cargo-pgrx 0.18.1, PostgreSQL 18 into .pg18/, pgrx init) and does
# nothing otherwise. PG=18 picks PostgreSQL 18 for demo and chaos (default 15); make test runs
# both.
.PHONY: setup demo test chaos bench package fuzz upgrade-script citus-check

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup
	bash scripts/test.sh

# The fault and load run alone (make test runs it too); docs/reliability.md.
chaos: setup
	bash pg_tests/chaos.sh

# The release packages in target/package/: the PostgreSQL 15 .deb and the PostgreSQL 18
# tarball (docs/development.md, "Making a release").
package: setup
	bash scripts/package.sh

# The fuzz targets of the core, FUZZ_SECONDS each (default 60); make test runs 5 s each.
# docs/reliability.md, "Fuzzing".
fuzz: setup
	bash scripts/fuzz.sh

# Not one of the two set-up commands: the benchmark (docs/benchmarks.md), ~20 minutes.
bench: setup
	bash bench/run.sh

# After a schema change: reassemble the upgrade script of the version being developed
# (scripts/upgrade_script.sh; make test checks it is current and pg_tests/sql/upgrade.sql
# proves it).
upgrade-script: setup
	bash scripts/upgrade_script.sh

# ip_inventory on a real Citus cluster (docs/scaling.md): runs when Citus is installed in the
# PostgreSQL of PG_CONFIG, says it was skipped otherwise (CI does not install Citus).
citus-check:
	bash pg_tests/citus_check.sh
