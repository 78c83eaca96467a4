#!/usr/bin/env bash
# Run a real Apache Kafka 4.1 broker (KRaft, one combined broker+controller node on
# 127.0.0.1) without Docker, from jars that Maven fetches from Maven Central.
#
# Usage: deploy/local/kafka.sh COMMAND [ARGS...]
#   fetch              fetch the jars (once; again only when kafka/pom.xml changes)
#   start              fetch + format storage if needed, start the broker in the
#                      background and wait until it answers (no-op when running)
#   stop               SIGTERM, wait, then SIGKILL; no-op when not running
#   status             print "running" and exit 0 when up; print why not, exit 1 otherwise
#   wait               wait until the broker answers a metadata request
#   tool CLASS ARGS... run a main class from the jars (quiet tools logging), e.g.
#                      kafka.sh tool org.apache.kafka.tools.TopicCommand \
#                          --bootstrap-server 127.0.0.1:9092 --list
#   logs [-f]          show the end of the broker log (-f: follow it)
#
# Environment:
#   TERRAIN_STATE_DIR           state root (default <repo>/.local); this script uses
#                               $TERRAIN_STATE_DIR/kafka: libs/, data/, kafka.log, kafka.pid
#   KAFKA_BOOTSTRAP_SERVERS     when set to anything but 127.0.0.1:9092 / localhost:9092,
#                               an external broker is used: start only waits for it,
#                               stop does nothing, status/wait probe it
#   KAFKA_START_TIMEOUT         seconds start/wait wait for the broker (default 90)
#   KAFKA_STOP_TIMEOUT          seconds stop waits after SIGTERM before SIGKILL (default 30)
#   KAFKA_HEAP_OPTS             broker heap (default "-Xms256m -Xmx512m")
#   KAFKA_JVM_PERFORMANCE_OPTS  broker GC options (default: G1 as in Kafka's scripts)
#   KAFKA_OPTS                  extra broker JVM options
#   KAFKA_TOOL_OPTS             JVM options of `tool` (default "-Xmx512m")
#   JAVA_HOME                   java to use (default: java on PATH)
#
# Missing java or mvn are installed with apt-get when running as root on Debian/Ubuntu.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd -P)
CONF_DIR=$SCRIPT_DIR/kafka
POM=$CONF_DIR/pom.xml

state_root=${TERRAIN_STATE_DIR:-$REPO_ROOT/.local}
case $state_root in
  /*) ;;
  *) state_root=$PWD/$state_root ;;
esac
STATE=$state_root/kafka
# A second broker (tests that stop their own broker) can share the first one's jars.
LIBS=${KAFKA_LIBS_DIR:-$STATE/libs}
DATA=$STATE/data
LOG_FILE=$STATE/kafka.log
OUT_FILE=$STATE/kafka.out
PID_FILE=$STATE/kafka.pid
STAMP_FILE=$LIBS/.pom.sha256
CLUSTER_ID_FILE=$STATE/cluster.id
SERVER_PROPS=$STATE/server.properties
TOOLS_LOG4J=$STATE/tools-log4j2.yaml
PROBE_PROPS=$STATE/probe.properties

LOCAL_HOST=127.0.0.1
LOCAL_PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
LOCAL_BOOTSTRAP=$LOCAL_HOST:$LOCAL_PORT
BOOTSTRAP=${KAFKA_BOOTSTRAP_SERVERS:-$LOCAL_BOOTSTRAP}
BOOTSTRAP=${BOOTSTRAP// /}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
READY_MARKER='Kafka Server started'

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

is_external() {
  case $BOOTSTRAP in
    "$LOCAL_BOOTSTRAP" | "localhost:$LOCAL_PORT" | "PLAINTEXT://$LOCAL_BOOTSTRAP" | "PLAINTEXT://localhost:$LOCAL_PORT") return 1 ;;
    *) return 0 ;;
  esac
}

# ---------------------------------------------------------------- prerequisites

JAVA=java
if [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
  JAVA=$JAVA_HOME/bin/java
fi

# Install Debian packages $@ when running as root with apt-get; output to apt.log.
apt_install() {
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    mkdir -p "$STATE"
    local apt_log=$STATE/apt.log
    log "installing $* with apt-get (output: $apt_log)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } \
      >"$apt_log" 2>&1; then
      tail -n 20 "$apt_log" >&2
      die "apt-get install $* failed (see $apt_log)"
    fi
    return 0
  fi
  return 1
}

java_major() {
  # `java -version` prints e.g.: openjdk version "17.0.15" 2025-04-15
  local v
  v=$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
  v=${v#1.}
  printf '%s\n' "${v%%[.+-]*}"
}

# require_tools [mvn]: java 17+ always, mvn when asked; installs what is missing in one
# apt-get run when root on Debian/Ubuntu, otherwise says how to.
require_tools() {
  local missing=() pkgs=() want
  command -v "$JAVA" >/dev/null 2>&1 || { missing+=(java) && pkgs+=(openjdk-17-jre-headless); }
  for want in "$@"; do
    command -v "$want" >/dev/null 2>&1 || { missing+=("$want") && pkgs+=(maven); }
  done
  if ((${#missing[@]})); then
    apt_install "${pkgs[@]}" ||
      die "${missing[*]} not found: Kafka 4.1 needs Java 17+, and Maven fetches its jars.
  On Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless maven
  (or set JAVA_HOME to a Java 17+ install)."
    local t
    for t in "$JAVA" "$@"; do
      command -v "$t" >/dev/null 2>&1 || die "$t still not found after apt-get install ${pkgs[*]}"
    done
  fi
  local major
  major=$(java_major)
  if [[ ! $major =~ ^[0-9]+$ ]] || ((major < 17)); then
    die "Kafka 4.1 needs Java 17 or newer; $(command -v "$JAVA") is version '${major}'.
  Install openjdk-17-jre-headless (Debian/Ubuntu) or point JAVA_HOME at Java 17+."
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | awk '{print $1}'
  else
    shasum -a 256 "$1" | awk '{print $1}'
  fi
}

# Serialise fetch/start/stop between concurrent callers (fd 9; never inherited by java).
LOCKED=0
take_lock() {
  ((LOCKED)) && return 0
  mkdir -p "$STATE"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE/.lock"
    flock -w 600 9 || die "could not lock $STATE/.lock"
  fi
  LOCKED=1
}

release_lock() {
  if ((LOCKED)); then
    exec 9>&-
    LOCKED=0
  fi
}

# ------------------------------------------------------------------------ fetch

libs_current() {
  [[ -f $STAMP_FILE && $(cat "$STAMP_FILE") == "$(sha256_of "$POM")" ]]
}

fetch() {
  take_lock
  if libs_current; then
    return 0
  fi
  require_tools mvn
  local tmp=$STATE/libs.tmp.$$ fetch_log=$STATE/fetch.log
  rm -rf "$tmp"
  log "fetching Kafka jars from Maven Central into $LIBS (cached in ~/.m2)"
  if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" -DincludeScope=runtime >"$fetch_log" 2>&1; then
    tail -n 40 "$fetch_log" >&2 || true
    rm -rf "$tmp"
    die "mvn could not fetch the jars (full output: $fetch_log)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "mvn ran but no kafka_2.13 jar in $tmp"
  sha256_of "$POM" >"$tmp/.pom.sha256"
  if [[ -d $LIBS ]] && broker_pid >/dev/null; then
    log "warning: the running broker still uses the old jars; restart it (stop, start) to use the new ones"
  fi
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  log "jars ready: $(find "$LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$LIBS" | awk '{print $1}')"
}

ensure_libs() {
  libs_current || fetch
  require_tools
}

# ------------------------------------------------------------------------ tools

write_tool_files() {
  mkdir -p "$STATE"
  # Tools log WARN and up to stderr only (like Kafka's tools-log4j2.yaml).
  cat >"$TOOLS_LOG4J.$$" <<'YAML'
Configuration:
  name: terrain-kafka-tools
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDERR
YAML
  mv "$TOOLS_LOG4J.$$" "$TOOLS_LOG4J"
  # Short timeouts for readiness probes, so a dead broker fails fast.
  cat >"$PROBE_PROPS.$$" <<'PROPS'
request.timeout.ms=5000
default.api.timeout.ms=10000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=2000
PROPS
  mv "$PROBE_PROPS.$$" "$PROBE_PROPS"
}

tool_cmd() {
  local opts
  read -r -a opts <<<"${KAFKA_TOOL_OPTS:--Xmx512m}"
  TOOL_CMD=("$JAVA" "${opts[@]}" -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$TOOLS_LOG4J" -cp "$LIBS/*")
}

run_tool() {
  ensure_libs
  write_tool_files
  release_lock
  tool_cmd
  exec "${TOOL_CMD[@]}" "$@"
}

# Does $1 answer a metadata request (list topics)?
metadata_ok() {
  local bootstrap=$1
  # a short-lived client: C1 only and a small serial heap start ~25% faster
  local cmd=("$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$TOOLS_LOG4J" -cp "$LIBS/*"
    org.apache.kafka.tools.TopicCommand
    --bootstrap-server "$bootstrap" --command-config "$PROBE_PROPS" --list)
  if command -v timeout >/dev/null 2>&1; then
    timeout 30 "${cmd[@]}" >/dev/null 2>&1
  else
    "${cmd[@]}" >/dev/null 2>&1
  fi
}

# Does host:port accept a TCP connection?
# shellcheck disable=SC2016 # $0/$1 expand in the inner bash, on purpose
port_open() {
  local host=$1 port=$2
  if command -v timeout >/dev/null 2>&1; then
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
  else
    bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
  fi
}

# First host:port of a bootstrap list, without a PROTOCOL:// prefix.
first_server() {
  local s=${1%%,*}
  s=${s#*://}
  printf '%s\n' "$s"
}

external_answers() {
  local s host port
  s=$(first_server "$BOOTSTRAP")
  host=${s%:*}
  port=${s##*:}
  host=${host#[}
  host=${host%]}
  port_open "$host" "$port"
}

# ------------------------------------------------------------------ the process

# Is $1 a live java process running our broker (our generated server.properties)?
is_our_broker() {
  local pid=$1 args
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  args=$(ps -ww -p "$pid" -o args= 2>/dev/null) || return 1
  [[ $args == *kafka.Kafka* && $args == *"$SERVER_PROPS"* ]]
}

# Prints the pid of our running broker, if any (from the pid file, else by searching
# the process table, e.g. when the pid file was deleted).
broker_pid() {
  local pid
  if [[ -f $PID_FILE ]]; then
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    if is_our_broker "$pid"; then
      printf '%s\n' "$pid"
      return 0
    fi
  fi
  while read -r pid; do
    if is_our_broker "$pid"; then
      printf '%s\n' "$pid"
      return 0
    fi
  done < <(pgrep -f 'kafka\.Kafka' 2>/dev/null || true)
  return 1
}

local_port_open() { port_open "$LOCAL_HOST" "$LOCAL_PORT"; }

# Byte offsets of kafka.log / kafka.out when this start launched java: failure reports
# show only what this run wrote.
LOG_OFFSET=0
OUT_OFFSET=0

file_size() {
  if [[ -f $1 ]]; then wc -c <"$1" | tr -d ' '; else echo 0; fi
}

# Last $3 lines of file $1 written after byte offset $2 (all of it if it rolled over).
tail_since() {
  local file=$1 offset=$2 n=$3
  [[ -s $file ]] || return 0
  (($(file_size "$file") < offset)) && offset=0
  tail -c +"$((offset + 1))" "$file" | tail -n "$n"
}

tail_logs() {
  local n=${1:-40} text
  text=$(tail_since "$LOG_FILE" "$LOG_OFFSET" "$n")
  if [[ -n $text ]]; then
    log "last $n lines of $LOG_FILE:"
    printf '%s\n' "$text" >&2
  fi
  text=$(tail_since "$OUT_FILE" "$OUT_OFFSET" "$n")
  if [[ -n $text ]]; then
    log "last $n lines of $OUT_FILE (the JVM's stdout/stderr):"
    printf '%s\n' "$text" >&2
  fi
}

now_ms() {
  local t=${EPOCHREALTIME:-}
  if [[ -n $t ]]; then
    t=${t/,/.}
    printf '%s\n' "$((${t%.*} * 1000 + 10#$(printf '%.3s' "${t#*.}")))"
  else
    printf '%s\n' "$(($(date +%s) * 1000))"
  fi
}

format_storage() {
  if [[ -f $DATA/meta.properties ]]; then
    return 0
  fi
  mkdir -p "$DATA"
  tool_cmd
  if [[ ! -s $CLUSTER_ID_FILE ]]; then
    "${TOOL_CMD[@]}" kafka.tools.StorageTool random-uuid >"$CLUSTER_ID_FILE.tmp"
    mv "$CLUSTER_ID_FILE.tmp" "$CLUSTER_ID_FILE"
  fi
  local cid
  cid=$(tr -d '[:space:]' <"$CLUSTER_ID_FILE")
  log "formatting $DATA (cluster id $cid)"
  "${TOOL_CMD[@]}" kafka.tools.StorageTool format --standalone --ignore-formatted \
    -t "$cid" -c "$SERVER_PROPS" >&2
}

write_server_props() {
  {
    # KAFKA_PORT / KAFKA_CONTROLLER_PORT move the listeners (a second, private broker).
    sed -e "s/127.0.0.1:9092/127.0.0.1:$LOCAL_PORT/g" -e "s/127.0.0.1:9093/127.0.0.1:$CONTROLLER_PORT/g" \
      "$CONF_DIR/server.properties"
    printf '\n# ---- added by deploy/local/kafka.sh ----\nlog.dirs=%s\n' "$DATA"
  } >"$SERVER_PROPS.tmp"
  mv "$SERVER_PROPS.tmp" "$SERVER_PROPS"
}

# Wait until the local broker ($1 = pid) logs that it started and answers a metadata
# request. $2 = byte offset of kafka.log when it was launched (0: look at all of it).
wait_local() {
  local pid=$1 offset=${2:-0} deadline marker=0 last_probe=0 now
  deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    # kill -0, not is_our_broker: right after the launch the pid may still be
    # nohup/setsid about to exec java.
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_logs 40
      rm -f "$PID_FILE"
      die "the broker (pid $pid) exited during startup"
    fi
    if ((!marker)) && [[ -f $LOG_FILE ]]; then
      (($(file_size "$LOG_FILE") < offset)) && offset=0 # the log rolled over
      if tail -c +"$((offset + 1))" "$LOG_FILE" | grep -qF "$READY_MARKER"; then
        marker=1
      fi
    fi
    now=$SECONDS
    # Probe once the log says it started; without the line (log rolled, logger level
    # changed) fall back to probing every 10 s once the port is open.
    if ((marker)) || { ((now - last_probe >= 10)) && local_port_open; }; then
      last_probe=$now
      if metadata_ok "$LOCAL_BOOTSTRAP"; then
        return 0
      fi
    fi
    sleep 0.5
  done
  tail_logs 40
  die "the broker (pid $pid) did not answer on $LOCAL_BOOTSTRAP within ${START_TIMEOUT}s (KAFKA_START_TIMEOUT)"
}

wait_external() {
  local deadline
  deadline=$((SECONDS + START_TIMEOUT))
  ensure_libs
  write_tool_files
  while ((SECONDS < deadline)); do
    if external_answers && metadata_ok "$BOOTSTRAP"; then
      return 0
    fi
    sleep 1
  done
  die "the external broker $BOOTSTRAP did not answer within ${START_TIMEOUT}s (KAFKA_START_TIMEOUT)"
}

# ----------------------------------------------------------------------- commands

cmd_start() {
  if is_external; then
    log "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP: using that external broker, waiting for it to answer"
    wait_external
    log "external broker $BOOTSTRAP answers"
    return 0
  fi
  take_lock
  local pid
  if pid=$(broker_pid); then
    printf '%s\n' "$pid" >"$PID_FILE"
    if local_port_open; then
      log "already running (pid $pid) on $LOCAL_BOOTSTRAP; nothing to do"
      return 0
    fi
    log "already started (pid $pid) but not answering yet; waiting for it"
    ensure_libs
    write_tool_files
    wait_local "$pid" 0
    log "running (pid $pid) on $LOCAL_BOOTSTRAP"
    return 0
  fi
  rm -f "$PID_FILE"
  if local_port_open; then
    die "$LOCAL_BOOTSTRAP is already taken by a process this script did not start.
  Stop it, or point KAFKA_BOOTSTRAP_SERVERS at it to use it as an external broker."
  fi

  ensure_libs
  write_tool_files
  write_server_props
  format_storage

  local heap perf extra
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
  read -r -a perf <<<"${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MetaspaceSize=96m -XX:MinMetaspaceFreeRatio=50 -XX:MaxMetaspaceFreeRatio=80}"
  read -r -a extra <<<"${KAFKA_OPTS:-}"
  local cmd=("$JAVA" "${heap[@]}" "${perf[@]}" "${extra[@]}"
    -Djava.awt.headless=true
    "-Xlog:gc*:file=$STATE/gc.log:time,tags:filecount=2,filesize=10M"
    "-Dkafka.logs.dir=$STATE"
    "-Dlog4j2.configurationFile=$CONF_DIR/log4j2.yaml"
    -cp "$LIBS/*"
    kafka.Kafka "$SERVER_PROPS")
  local detach=()
  command -v setsid >/dev/null 2>&1 && detach=(setsid)

  LOG_OFFSET=$(file_size "$LOG_FILE")
  OUT_OFFSET=$(file_size "$OUT_FILE")
  printf '==== %s start\n' "$(date '+%Y-%m-%d %H:%M:%S')" >>"$OUT_FILE"
  log "starting Kafka broker on $LOCAL_BOOTSTRAP (state in $STATE)"
  # nohup + setsid: own session, no controlling terminal, survives the calling shell.
  # nohup and setsid exec, so $! is the java process itself. fd 9 (the lock) is closed.
  (cd "$STATE" && exec nohup "${detach[@]}" "${cmd[@]}" </dev/null >>"$OUT_FILE" 2>&1 9>&-) &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  local t0
  t0=$(now_ms)
  wait_local "$pid" "$LOG_OFFSET"
  local ms=$(($(now_ms) - t0))
  log "running (pid $pid) on $LOCAL_BOOTSTRAP; answered $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s after launch; log: $LOG_FILE"
}

cmd_stop() {
  if is_external; then
    log "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP is an external broker; not stopping it"
    return 0
  fi
  take_lock
  local pid
  if ! pid=$(broker_pid); then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while is_our_broker "$pid" && ((SECONDS < deadline)); do
    sleep 0.5
  done
  if is_our_broker "$pid"; then
    log "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Leave nothing behind: any other broker on our config (e.g. a stray second start).
  local other
  while other=$(broker_pid); do
    log "killing leftover broker process $other"
    kill -KILL "$other" 2>/dev/null || true
    sleep 0.5
  done
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  if is_external; then
    if external_answers; then
      echo running
      return 0
    fi
    echo "not answering (external broker $BOOTSTRAP)"
    return 1
  fi
  local pid
  if pid=$(broker_pid); then
    if local_port_open; then
      echo running
      return 0
    fi
    echo "starting (pid $pid, $LOCAL_BOOTSTRAP not answering yet)"
    return 1
  fi
  echo stopped
  return 1
}

cmd_wait() {
  if is_external; then
    wait_external
    return 0
  fi
  local pid
  pid=$(broker_pid) || die "not running (start it with: $0 start)"
  ensure_libs
  write_tool_files
  wait_local "$pid" 0
}

cmd_logs() {
  [[ -f $LOG_FILE ]] || die "no log yet ($LOG_FILE)"
  if [[ ${1:-} == -f ]]; then
    exec tail -n 100 -F "$LOG_FILE"
  fi
  tail -n "${1:-100}" "$LOG_FILE"
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

main() {
  local command=${1:-}
  [[ $# -gt 0 ]] && shift
  case $command in
    fetch) fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    wait) cmd_wait ;;
    tool)
      [[ $# -ge 1 ]] || die "usage: $0 tool MAIN_CLASS [ARGS...]"
      run_tool "$@"
      ;;
    logs) cmd_logs "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
