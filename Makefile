# The two entry points (see README.md). Both first run scripts/setup.sh, which installs what
# is missing (apt packages, cargo-pgrx 0.18.1, pgrx init) and does nothing otherwise.
.PHONY: setup demo test bench

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup
	bash scripts/test.sh

# Not one of the two set-up commands: the benchmark (docs/benchmarks.md), ~20 minutes.
bench: setup
	bash bench/run.sh
