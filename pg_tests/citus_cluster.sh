# A throwaway Citus cluster on this machine: a coordinator and two workers, each its own
# PostgreSQL 15 server on a loopback port, all with shared_preload_libraries =
# 'citus,ip_inventory'. Source this file after scripts/cluster.sh; it defines functions only.
# Citus itself is never built or installed here: it must already be installed in the
# PostgreSQL that PG_BIN / PG_CONFIG name (docs/development.md).

# Where an installed Citus would be, and whether it is there.
citus_control_file() { echo "$("$PG_CONFIG" --sharedir)/extension/citus.control"; }
citus_installed() { [ -f "$(citus_control_file)" ] && [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; }

# citus_node_start DIR NAME [postgresql.conf lines...]: initialises and starts one node in
# DIR/NAME, listening on 127.0.0.1 and on a socket in DIR/NAME. Prints its port.
citus_node_start() {
    local dir=$1 name=$2 port
    shift 2
    port=$(ipi_free_port)
    mkdir -p "$dir/$name"
    chmod 755 "$dir/$name"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/$name"
    ipi_as_owner "$PG_BIN/initdb" -D "$dir/$name/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/$name/initdb.log" 2>&1 || { cat "$dir/$name/initdb.log" >&2; return 1; }
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir/$name'"
        echo "port = $port"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "log_min_messages = warning"
        echo "shared_preload_libraries = 'citus,ip_inventory'"
        # Citus commits writes to several nodes with two-phase commit.
        echo "max_prepared_transactions = 100"
        echo "max_connections = 200"
        echo "citus.log_remote_commands = off"
        for line in "$@"; do echo "$line"; done
    } | ipi_as_owner tee -a "$dir/$name/data/postgresql.conf" >/dev/null
    ipi_as_owner env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$dir/$name/data" -l "$dir/$name/server.log" \
        -w -t 60 start >/dev/null || { cat "$dir/$name/server.log" >&2; return 1; }
    echo "$port"
}

# citus_cluster_start DIR [postgresql.conf lines...]: a coordinator and two workers under
# DIR, Citus created in the postgres database of each, the workers added. Exports
# CITUS_DIR, CITUS_COORD, CITUS_W1, CITUS_W2 (ports), PGHOST/PGPORT/PGUSER for the coordinator.
citus_cluster_start() {
    local dir=$1
    shift
    mkdir -p "$dir"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    CITUS_DIR=$dir
    CITUS_COORD=$(citus_node_start "$dir" coordinator "$@")
    CITUS_W1=$(citus_node_start "$dir" worker1 "$@")
    CITUS_W2=$(citus_node_start "$dir" worker2 "$@")
    export CITUS_DIR CITUS_COORD CITUS_W1 CITUS_W2
    export PGHOST=127.0.0.1 PGPORT=$CITUS_COORD PGUSER=postgres PGDATABASE=postgres
    local port
    for port in "$CITUS_COORD" "$CITUS_W1" "$CITUS_W2"; do
        ipi_psql -p "$port" -c "CREATE EXTENSION citus" >/dev/null
    done
    ipi_psql -p "$CITUS_COORD" \
        -c "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_COORD)" \
        -c "SELECT citus_add_node('127.0.0.1', $CITUS_W1)" \
        -c "SELECT citus_add_node('127.0.0.1', $CITUS_W2)" >/dev/null
}

# Runs psql on every node in turn (coordinator, worker1, worker2) with the same arguments.
citus_psql_all() {
    local port
    for port in "$CITUS_COORD" "$CITUS_W1" "$CITUS_W2"; do
        ipi_psql -p "$port" "$@"
    done
}

citus_cluster_stop() {
    [ -n "${CITUS_DIR:-}" ] || return 0
    local name
    for name in coordinator worker1 worker2; do
        [ -d "$CITUS_DIR/$name/data" ] || continue
        ipi_as_owner "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$name/data" -m fast -w stop >/dev/null 2>&1 || true
    done
}

# citus_node_restart NAME [immediate]: restarts one node (an immediate stop is a crash).
citus_node_restart() {
    local name=$1 mode=${2:-fast}
    ipi_as_owner "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$name/data" -m "$mode" -w stop >/dev/null
    ipi_as_owner env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$name/data" \
        -l "$CITUS_DIR/$name/server.log" -w -t 60 start >/dev/null
}
