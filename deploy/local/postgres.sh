#!/usr/bin/env bash
# Local PostgreSQL for Terrain development and tests: a REAL server from
# Debian's packages, in a dedicated cluster "terrain" (never the distro "main").
#
# Usage: deploy/local/postgres.sh start|stop|status|psql [ARGS]|url
#
#   start   install the server if missing (root: apt-get), create the cluster
#           once, start it, wait until pg_isready answers, ensure role and
#           database "terrain" exist. No restart if already running.
#   stop    stop the cluster (fast mode); no-op if not running.
#   status  print "running" and exit 0 if up, else print "stopped", exit 1.
#   psql    run psql as role terrain against database terrain (extra ARGS
#           are passed to psql).
#   url     print the DATABASE_URL to use.
#
# Environment:
#   TERRAIN_PG_PORT           TCP port on 127.0.0.1 (default 54329)
#   TERRAIN_PG_PASSWORD       password of role terrain (default "terrain")
#   TERRAIN_PG_VERSION        major version to use (default: the version of an
#                             existing terrain cluster, else newest installed)
#   TERRAIN_PG_START_TIMEOUT  seconds to wait for readiness (default 60)
#   DATABASE_URL              if it points anywhere other than
#                             127.0.0.1:PORT / localhost:PORT, it is treated as
#                             an external server (e.g. `docker compose up
#                             postgres`): start only waits for it, stop does
#                             nothing, url/psql use it.
set -euo pipefail

readonly CLUSTER=terrain
readonly DB_NAME=terrain
readonly DB_USER=terrain
readonly HOST=127.0.0.1
readonly SOCKET_DIR=/var/run/postgresql
PORT="${TERRAIN_PG_PORT:-54329}"
PASSWORD="${TERRAIN_PG_PASSWORD:-terrain}"
START_TIMEOUT="${TERRAIN_PG_START_TIMEOUT:-60}"
readonly PORT PASSWORD START_TIMEOUT

PROG="$(basename "$0")"
readonly PROG

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

[[ "$PORT" =~ ^[0-9]+$ ]] || die "TERRAIN_PG_PORT must be a number, got '$PORT'"
[[ "$START_TIMEOUT" =~ ^[0-9]+$ ]] || die "TERRAIN_PG_START_TIMEOUT must be a number of seconds"

# --------------------------------------------------------------------------
# privileges: the server never runs as root; pg_ctlcluster drops to the
# cluster owner (postgres) when called as root.
# --------------------------------------------------------------------------
is_root() { [[ "$(id -u)" -eq 0 ]]; }
is_postgres() { [[ "$(id -un)" == postgres ]]; }

# Run a cluster-management command (pg_ctlcluster, pg_createcluster, ...).
as_admin() {
  if is_root || is_postgres; then
    "$@"
  elif have sudo; then
    sudo -- "$@"
  else
    die "'$1' must run as root or postgres, and sudo is not available"
  fi
}

# Run a command as the postgres OS user (peer authentication on the socket).
as_postgres() {
  if is_postgres; then
    (cd / && "$@")
  elif is_root; then
    (cd / && runuser -u postgres -- "$@")
  elif have sudo; then
    (cd / && sudo -u postgres -- "$@")
  else
    die "need root, the postgres user or sudo to administer the cluster"
  fi
}

# --------------------------------------------------------------------------
# installation and cluster discovery
# --------------------------------------------------------------------------
server_installed() {
  have pg_ctlcluster && have pg_createcluster && have pg_lsclusters &&
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

ensure_server_installed() {
  server_installed && return 0
  if ! is_root; then
    die "PostgreSQL server is not installed (pg_ctlcluster/pg_createcluster missing) and this is not root.
Install it with: sudo apt-get install -y postgresql postgresql-contrib"
  fi
  log "installing PostgreSQL from Debian packages (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y postgresql postgresql-contrib
  server_installed || die "apt-get finished but the PostgreSQL server is still not usable"
}

ensure_client_installed() {
  have pg_isready && have psql && return 0
  is_root || die "psql/pg_isready missing. Install with: sudo apt-get install -y postgresql-client"
  log "installing PostgreSQL client from Debian packages (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y postgresql-client
}

# One line of `pg_lsclusters -h` for our cluster (any version), or nothing.
# Fields: version cluster port status owner datadir logfile
cluster_line() {
  have pg_lsclusters || return 0
  pg_lsclusters -h 2>/dev/null | awk -v c="$CLUSTER" -v v="${TERRAIN_PG_VERSION:-}" \
    '$2 == c && (v == "" || $1 == v) { print }' | sort -V | tail -n 1
}

# Major version to use: explicit, else existing terrain cluster, else newest.
detect_version() {
  if [[ -n "${TERRAIN_PG_VERSION:-}" ]]; then
    printf '%s\n' "$TERRAIN_PG_VERSION"
    return
  fi
  local line
  line="$(cluster_line)"
  if [[ -n "$line" ]]; then
    awk '{ print $1 }' <<<"$line"
    return
  fi
  local d newest=""
  for d in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x "$d" ]] || continue
    d="${d#/usr/lib/postgresql/}"
    newest="$(printf '%s\n%s\n' "$newest" "${d%%/*}" | sed '/^$/d' | sort -V | tail -n 1)"
  done
  [[ -n "$newest" ]] || die "no PostgreSQL server binaries found under /usr/lib/postgresql"
  printf '%s\n' "$newest"
}

field() { awk -v n="$2" '{ print $n }' <<<"$1"; }

cluster_running() {
  local line
  line="$(cluster_line)"
  [[ -n "$line" && "$(field "$line" 4)" == online* ]]
}

cluster_logfile() {
  local line ver
  line="$(cluster_line)"
  if [[ -n "$line" && -n "$(field "$line" 7)" ]]; then
    field "$line" 7
  else
    ver="$(detect_version 2>/dev/null || echo '*')"
    printf '/var/log/postgresql/postgresql-%s-%s.log\n' "$ver" "$CLUSTER"
  fi
}

show_log_tail() {
  local logfile
  logfile="$(cluster_logfile)"
  log "last 40 lines of $logfile:"
  if [[ -r "$logfile" ]]; then
    tail -n 40 "$logfile" >&2 || true
  else
    as_admin tail -n 40 "$logfile" >&2 || true
  fi
}

# Settings owned by this script (conf.d is included after postgresql.conf).
# Durability stays at PostgreSQL's safe defaults, stated explicitly.
desired_conf() {
  cat <<'EOF'
# Managed by deploy/local/postgres.sh (Terrain local dev/test cluster).
# Rewritten on `start`; do not edit by hand.
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 256MB
password_encryption = 'scram-sha-256'
# durability: never weakened (the project promises durable writes)
fsync = on
synchronous_commit = on
full_page_writes = on
# per-statement CPU and time, for the benchmarks' profiles (bench/README.md)
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
EOF
}

create_cluster() {
  local ver="$1"
  log "creating cluster $ver/$CLUSTER on $HOST:$PORT"
  # Auth: peer on the Unix socket (for bootstrap as postgres),
  # scram-sha-256 over TCP for everybody. UTF8/C.UTF-8 so the result does not
  # depend on the caller's locale (an unset LANG would give SQL_ASCII).
  # start.conf=manual: the dev cluster only runs when asked, not at boot.
  # Data checksums detect silent corruption (they strengthen, not weaken).
  as_admin pg_createcluster "$ver" "$CLUSTER" \
    --port "$PORT" \
    --start-conf manual \
    --encoding UTF8 --locale C.UTF-8 \
    -- --auth-local=peer --auth-host=scram-sha-256 --data-checksums >&2
}

# Bring configuration in line before a (re)start: port and conf.d file.
configure_cluster() {
  local ver="$1" confdir conffile current_port
  confdir="/etc/postgresql/$ver/$CLUSTER/conf.d"
  conffile="$confdir/50-terrain.conf"
  as_admin install -d -o postgres -g postgres -m 0755 "$confdir"
  if ! desired_conf | as_admin cmp -s - "$conffile" 2>/dev/null; then
    desired_conf | as_admin tee "$conffile" >/dev/null
    as_admin chown postgres:postgres "$conffile"
  fi
  current_port="$(as_admin pg_conftool "$ver" "$CLUSTER" postgresql.conf show -s port 2>/dev/null || true)"
  if [[ "$current_port" != "$PORT" ]]; then
    log "moving cluster $ver/$CLUSTER from port ${current_port:-?} to $PORT"
    as_admin pg_conftool "$ver" "$CLUSTER" postgresql.conf set port "$PORT"
  fi
  # /var/run is a tmpfs: after a reboot without systemd-tmpfiles the socket
  # directory may be gone, and the server would refuse to start.
  if [[ ! -d "$SOCKET_DIR" ]]; then
    as_admin install -d -o postgres -g postgres -m 2775 "$SOCKET_DIR"
  fi
}

wait_ready() {
  # wait_ready HOST PORT  (HOST may be empty: default socket)
  local host="$1" port="$2" deadline
  local -a args=(-p "$port" -t 2)
  [[ -n "$host" ]] && args+=(-h "$host")
  deadline=$((SECONDS + START_TIMEOUT))
  while ! pg_isready -q "${args[@]}"; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.25
  done
}

sql_literal() { printf "'%s'" "${1//\'/\'\'}"; }

# True if role terrain can already log in with PASSWORD to database terrain
# and has its attributes: then no superuser work is needed (this also lets
# an unprivileged user run `start` against a running cluster).
role_and_db_ok() {
  local ok
  ok="$(PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=5 psql -X -A -t -q -w \
    -h "$HOST" -p "$PORT" -U "$DB_USER" -d "$DB_NAME" \
    -c "SELECT rolcanlogin AND rolcreatedb AND rolcreaterole AND pg_has_role('pg_read_all_stats', 'member') AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') FROM pg_roles WHERE rolname = current_user" \
    2>/dev/null)" || return 1
  [[ "$ok" == t ]]
}

# Idempotently create role and database. SQL goes through stdin so the
# password never appears in a process's argument list.
ensure_role_and_db() {
  role_and_db_ok && return 0
  as_postgres env -u PGOPTIONS -u PGSERVICE -u PGSERVICEFILE -u PGSSLMODE \
    psql -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -U postgres -d postgres >/dev/null <<SQL
SELECT 'CREATE ROLE $DB_USER' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER')
\\gexec
ALTER ROLE $DB_USER WITH LOGIN CREATEDB CREATEROLE PASSWORD $(sql_literal "$PASSWORD");
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB_NAME')
\\gexec
ALTER DATABASE $DB_NAME OWNER TO $DB_USER;
-- the benchmarks read every database's statement costs (pg_stat_statements)
GRANT pg_read_all_stats TO $DB_USER;
\\connect $DB_NAME
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
}

# --------------------------------------------------------------------------
# DATABASE_URL handling
# --------------------------------------------------------------------------
EXT_HOST=""
EXT_PORT=""

# Normalise SQLAlchemy-style schemes (postgresql+psycopg://) for libpq.
libpq_url() { sed -E 's#^postgres(ql)?(\+[A-Za-z0-9_]+)?://#postgresql://#' <<<"$1"; }

# Sets EXT_HOST/EXT_PORT from DATABASE_URL; returns 0 if it is external.
database_url_is_external() {
  [[ -n "${DATABASE_URL:-}" ]] || return 1
  local rest authority
  rest="${DATABASE_URL#*://}"
  authority="${rest%%[/?]*}"
  authority="${authority##*@}"          # drop user:password@ (last @ wins)
  if [[ "$authority" == \[* ]]; then    # [ipv6]:port
    EXT_HOST="${authority%%]*}"
    EXT_HOST="${EXT_HOST#[}"
    EXT_PORT="${authority#*]}"
  else
    EXT_HOST="${authority%%:*}"
    EXT_PORT="${authority#"$EXT_HOST"}"
  fi
  EXT_PORT="${EXT_PORT#:}"
  EXT_PORT="${EXT_PORT:-5432}"
  case "$EXT_HOST" in
    127.0.0.1 | localhost) [[ "$EXT_PORT" != "$PORT" ]] ;;
    *) return 0 ;;
  esac
}

urlencode() {
  local LC_ALL=C s="$1" out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in
      [A-Za-z0-9._~-]) out+="$c" ;;
      *) printf -v c '%%%02X' "'$c"; out+="$c" ;;
    esac
  done
  printf '%s' "$out"
}

local_url() {
  printf 'postgresql://%s:%s@%s:%s/%s\n' \
    "$DB_USER" "$(urlencode "$PASSWORD")" "$HOST" "$PORT" "$DB_NAME"
}

# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------
lock() {
  # Serialise concurrent start/stop (e.g. parallel test sessions).
  have flock || return 0
  local lockfile="${TMPDIR:-/tmp}/terrain-postgres-$PORT.lock"
  if [[ ! -e "$lockfile" ]]; then
    (umask 000 && : >>"$lockfile") 2>/dev/null || true
  fi
  [[ -r "$lockfile" ]] || return 0
  exec 9<"$lockfile"
  flock -w 120 9 || die "timed out waiting for lock $lockfile"
}

cmd_start() {
  if database_url_is_external; then
    ensure_client_installed
    log "DATABASE_URL points to an external server (${EXT_HOST:-<socket>}:$EXT_PORT); not starting the local cluster"
    if ! wait_ready "$EXT_HOST" "$EXT_PORT"; then
      die "external server ${EXT_HOST:-<socket>}:$EXT_PORT not ready after ${START_TIMEOUT}s"
    fi
    log "external server ${EXT_HOST:-<socket>}:$EXT_PORT is ready"
    return 0
  fi

  ensure_server_installed
  lock
  local ver line
  ver="$(detect_version)"
  [[ -x "/usr/lib/postgresql/$ver/bin/postgres" ]] ||
    die "PostgreSQL $ver server binaries not installed (apt-get install postgresql-$ver)"
  line="$(cluster_line)"
  if [[ -z "$line" ]]; then
    create_cluster "$ver"
    line="$(cluster_line)"
    [[ -n "$line" ]] || die "pg_createcluster did not create $ver/$CLUSTER"
  fi

  if [[ "$(field "$line" 4)" == online* ]]; then
    [[ "$(field "$line" 3)" == "$PORT" ]] ||
      die "cluster $ver/$CLUSTER is running on port $(field "$line" 3), not $PORT; stop it first"
    log "cluster $ver/$CLUSTER already running on $HOST:$PORT"
  else
    configure_cluster "$ver"
    log "starting cluster $ver/$CLUSTER on $HOST:$PORT"
    # 9<&-: the server must not inherit (and hold forever) the lock fd.
    if ! as_admin pg_ctlcluster "$ver" "$CLUSTER" start >&2 9<&-; then
      log "pg_ctlcluster failed to start $ver/$CLUSTER"
      show_log_tail
      exit 1
    fi
  fi

  if ! wait_ready "$HOST" "$PORT"; then
    log "server did not answer pg_isready on $HOST:$PORT within ${START_TIMEOUT}s"
    show_log_tail
    exit 1
  fi
  ensure_role_and_db
  log "ready: $(local_url | sed -E 's#(//[^:]+:)[^@]*@#\1***@#')"
}

cmd_stop() {
  if database_url_is_external; then
    log "DATABASE_URL points to an external server (${EXT_HOST:-<socket>}:$EXT_PORT); nothing to stop"
    return 0
  fi
  server_installed || { log "PostgreSQL server not installed; nothing to stop"; return 0; }
  lock
  local line
  line="$(cluster_line)"
  if [[ -z "$line" ]]; then
    log "cluster $CLUSTER does not exist; nothing to stop"
  elif [[ "$(field "$line" 4)" != online* ]]; then
    log "cluster $(field "$line" 1)/$CLUSTER is not running"
  else
    log "stopping cluster $(field "$line" 1)/$CLUSTER"
    as_admin pg_ctlcluster --mode fast "$(field "$line" 1)" "$CLUSTER" stop >&2
  fi
}

cmd_status() {
  if database_url_is_external; then
    if have pg_isready && pg_isready -q -t 2 -p "$EXT_PORT" ${EXT_HOST:+-h "$EXT_HOST"}; then
      echo running
      return 0
    fi
    echo stopped
    return 1
  fi
  if server_installed && cluster_running; then
    echo running
    return 0
  fi
  echo stopped
  return 1
}

cmd_psql() {
  ensure_client_installed
  if database_url_is_external; then
    exec psql "$(libpq_url "$DATABASE_URL")" "$@"
  fi
  PGPASSWORD="$PASSWORD" exec psql -h "$HOST" -p "$PORT" -U "$DB_USER" -d "$DB_NAME" "$@"
}

cmd_url() {
  if database_url_is_external; then
    printf '%s\n' "$DATABASE_URL"
  else
    local_url
  fi
}

usage() {
  cat >&2 <<EOF
usage: $PROG start|stop|status|psql [ARGS]|url
env:   TERRAIN_PG_PORT (54329) TERRAIN_PG_PASSWORD (terrain) TERRAIN_PG_VERSION
       TERRAIN_PG_START_TIMEOUT (60) DATABASE_URL (external server if not local)
EOF
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    psql) cmd_psql "$@" ;;
    url) cmd_url ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
