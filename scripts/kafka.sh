#!/usr/bin/env bash
# Provision a real Apache Kafka 4.x broker (KRaft mode, no ZooKeeper, no
# Docker) on loopback for kafka-client's tests, examples and benchmarks.
#
# Kafka is fetched once with `mvn` into a cache that survives between runs,
# then run straight from its jars with the machine's JVM. Every `start` begins
# with an empty cluster so tests never see each other's topics or offsets.
# Run `scripts/kafka.sh --help` for the commands and environment variables.
set -euo pipefail

# Newest 4.x release whose broker AND tools resolve completely through mvn.
# (4.4.0 is listed in the repository metadata, but kafka-tools 4.4.0 and
# several of kafka_2.13 4.4.0's dependencies cannot be downloaded, so it is
# not usable yet.)
readonly DEFAULT_KAFKA_VERSION=4.3.1
# Kafka ships no SLF4J binding in its Maven artifacts (the binary
# distribution adds one), so we add log4j2's; this is the log4j2 version
# Kafka 4.3 itself uses, pinned so log4j-api/core/binding always match.
readonly DEFAULT_LOG4J_VERSION=2.25.4
readonly MIN_JAVA=17

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT

KAFKA_VERSION="${KAFKA_VERSION:-$DEFAULT_KAFKA_VERSION}"
LOG4J_VERSION="${KAFKA_LOG4J_VERSION:-$DEFAULT_LOG4J_VERSION}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
CLIENT_PORT_BASE="${KAFKA_PORT:-9092}"
CONTROLLER_PORT_BASE="${KAFKA_CONTROLLER_PORT:-19092}"
# Three nodes with these heaps fit comfortably on a 2-core / 24 GiB machine.
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1g -Xms256m}"
EXTRA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"

# Absolute paths: the state dir ends up in the broker's command line, which is
# how we recognise our own processes, so it must not depend on the caller's cwd.
abspath() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}

if [[ -n "${KAFKA_CACHE_DIR:-}" ]]; then
  CACHE_DIR="$(abspath "$KAFKA_CACHE_DIR")"
elif [[ -n "${HOME:-}" ]]; then
  CACHE_DIR="$HOME/.cache/kafka-client/kafka-$KAFKA_VERSION"
else
  CACHE_DIR=""  # reported as an error only by the commands that need it
fi
STATE_DIR="$(abspath "${KAFKA_STATE_DIR:-$REPO_ROOT/target/kafka}")"

JAVA=""

# ---------------------------------------------------------------- helpers --

# Progress and errors go to stderr so that stdout stays machine-readable
# (`classpath` and `start` print exactly one useful line there).
say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
  printf 'kafka.sh: error: %s\n' "$*" >&2
  exit 1
}

# Milliseconds since the epoch, from bash's own clock (no `date` fork).
now_ms() {
  local t="${EPOCHREALTIME:-}"
  if [[ -z "$t" ]]; then  # bash < 5
    date +%s%3N
    return
  fi
  t="${t//[!0-9]/}"
  printf '%s\n' "$((10#$t / 1000))"
}

# Seconds elapsed since $1 (from now_ms), as e.g. "3.4s".
since() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%ds\n' "$((ms / 1000))" "$((ms % 1000 / 100))"
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

check_env_numbers() {
  local name value
  for name in START_TIMEOUT STOP_TIMEOUT CLIENT_PORT_BASE CONTROLLER_PORT_BASE; do
    value="${!name}"
    is_uint "$value" || die "$name must be a whole number, got '$value'"
  done
}

# Finds java (JAVA_HOME first, as the JDK tooling does) and insists on 17+:
# Kafka 4.x brokers and tools are compiled for Java 17 and refuse older JVMs
# with an unhelpful UnsupportedClassVersionError.
require_java() {
  [[ -n "$JAVA" ]] && return 0
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    JAVA="$(command -v java)"
  else
    die "java not found: Apache Kafka $KAFKA_VERSION needs Java $MIN_JAVA or newer (install a JDK/JRE $MIN_JAVA+, e.g. openjdk-17-jre-headless, or set JAVA_HOME)"
  fi
  local line version major
  line="$("$JAVA" -version 2>&1 | head -n 1)" || true
  version="$(sed -n 's/.*version "\([^"]*\)".*/\1/p' <<<"$line")"
  if [[ "$version" == 1.* ]]; then
    major="$(cut -d. -f2 <<<"$version")"
  else
    major="${version%%[.+-]*}"
  fi
  is_uint "$major" || die "could not read the Java version from '$line' ($JAVA); Kafka $KAFKA_VERSION needs Java $MIN_JAVA+"
  ((major >= MIN_JAVA)) ||
    die "$JAVA is Java $version; Apache Kafka $KAFKA_VERSION needs Java $MIN_JAVA or newer (set JAVA_HOME to a newer JDK)"
}

require_mvn() {
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found: it is needed once to fetch Apache Kafka $KAFKA_VERSION into $CACHE_DIR (install Maven, e.g. apt-get install maven)"
}

# Takes an advisory lock on file $2 with descriptor $1 so that parallel test
# processes calling this script serialise instead of racing. Quietly does
# nothing where flock(1) is missing (e.g. macOS).
lock() {
  command -v flock >/dev/null 2>&1 || return 0
  local fd="$1" file="$2"
  mkdir -p "$(dirname "$file")"
  eval "exec $fd>>\"\$file\""
  flock "$fd"
}

# ------------------------------------------------------------------ fetch --

# The throwaway pom whose runtime dependencies are exactly the jars we need:
#  - kafka_2.13: the broker (kafka.Kafka) and the storage tool
#    (kafka.tools.StorageTool);
#  - kafka-tools: console producer/consumer, kafka-topics, perf tools;
#  - log4j2 + its SLF4J bindings (1.x and 2.x, whichever SLF4J Kafka uses) so
#    the broker can log to a file. slf4j-api itself is excluded from the
#    bindings so Kafka's own choice of SLF4J version wins.
pom_xml() {
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by kafka-client's scripts/kafka.sh; only used to fetch jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kafka-client</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>$LOG4J_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId></exclusion>
      </exclusions>
    </dependency>
  </dependencies>
</project>
EOF
}

# log4j2 configuration found on the `classpath` output: without one, every
# tool run prints a log4j warning and logs only errors. Warnings go to stderr
# because the console consumer writes records to stdout.
tools_log4j() {
  cat <<'EOF'
# Generated by kafka-client's scripts/kafka.sh: logging for Kafka CLI tools.
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

# What the cache must match; stored in the marker so that a change to the
# artifact list (in this script) triggers a re-fetch instead of a stale cache.
fetch_fingerprint() {
  { pom_xml; tools_log4j; } | cksum | cut -d' ' -f1
}

is_fetched() {
  local marker="$CACHE_DIR/.fetch-complete"
  [[ -f "$marker" && -d "$CACHE_DIR/libs" ]] &&
    [[ "$(cat "$marker")" == "$(fetch_fingerprint)" ]]
}

# Downloads Kafka and its whole runtime classpath into $CACHE_DIR/libs, once.
fetch_kafka() {
  [[ -n "$CACHE_DIR" ]] || die "HOME is not set: set KAFKA_CACHE_DIR to where Kafka's jars should be cached"
  local t0
  t0="$(now_ms)"
  if is_fetched; then
    say "fetch: Kafka $KAFKA_VERSION already cached in $CACHE_DIR ($(since "$t0"))"
    return 0
  fi
  lock 8 "$CACHE_DIR.lock"
  if is_fetched; then  # another process fetched it while we waited
    exec 8>&-
    say "fetch: Kafka $KAFKA_VERSION fetched by another process ($(since "$t0"))"
    return 0
  fi
  require_mvn
  say "fetch: downloading Apache Kafka $KAFKA_VERSION and its dependencies with mvn into $CACHE_DIR ..."
  mkdir -p "$CACHE_DIR/config"
  pom_xml >"$CACHE_DIR/pom.xml"
  tools_log4j >"$CACHE_DIR/config/log4j2.properties"
  rm -rf "$CACHE_DIR/libs.partial" "$CACHE_DIR/.fetch-complete"
  # Copy into a scratch dir and rename it at the end, so an interrupted fetch
  # never looks complete. mvn's output goes to stderr to keep our stdout clean,
  # minus the colour-reset escapes Maven 3.8 emits even in batch mode.
  if ! mvn -B -q -f "$CACHE_DIR/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CACHE_DIR/libs.partial" 2>&1 |
    sed $'s/\x1b\\[[0-9;]*m//g' >&2; then
    die "mvn could not fetch Apache Kafka $KAFKA_VERSION (see its output above); is KAFKA_VERSION a published 4.x release?"
  fi
  local jar
  for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar"; do
    [[ -f "$CACHE_DIR/libs.partial/$jar" ]] || die "mvn finished but $jar is missing from $CACHE_DIR/libs.partial"
  done
  rm -rf "$CACHE_DIR/libs"
  mv "$CACHE_DIR/libs.partial" "$CACHE_DIR/libs"
  fetch_fingerprint >"$CACHE_DIR/.fetch-complete"
  exec 8>&-
  local jars=("$CACHE_DIR"/libs/*.jar)
  say "fetch: fetched ${#jars[@]} jars in $(since "$t0")"
}

# The Java classpath: the tools' log4j2 config dir, then every jar.
kafka_classpath() {
  local cp="$CACHE_DIR/config" jar
  for jar in "$CACHE_DIR"/libs/*.jar; do
    cp+=":$jar"
  done
  printf '%s\n' "$cp"
}

# ------------------------------------------------------------------ state --
#
# $STATE_DIR.lock           serialises start/stop/kill/restart (kept beside
#                           the dir so that wiping the dir never drops it)
# $STATE_DIR/
#   .kafka-sh-state         marks the dir as ours (we only ever wipe such a dir)
#   cluster.conf            topology of the last `start` (nodes, ports, cache)
#   log4j2.properties       broker logging: everything to the node's log file
#   node-N/server.properties, node-N/data/, node-N/kafka.pid, node-N/kafka.log

# Variables describing the last started cluster, loaded from cluster.conf.
C_NODES="" C_CLIENT_PORT="" C_CONTROLLER_PORT="" C_VERSION="" C_CACHE_DIR="" C_CLUSTER_ID=""

# Parsed rather than sourced: it is data, and must not be executed.
load_cluster() {
  local file="$STATE_DIR/cluster.conf" key value
  [[ -f "$file" ]] || return 1
  while IFS='=' read -r key value; do
    case "$key" in
      nodes) C_NODES="$value" ;;
      client_port) C_CLIENT_PORT="$value" ;;
      controller_port) C_CONTROLLER_PORT="$value" ;;
      version) C_VERSION="$value" ;;
      cache_dir) C_CACHE_DIR="$value" ;;
      cluster_id) C_CLUSTER_ID="$value" ;;
    esac
  done <"$file"
  is_uint "$C_NODES" && is_uint "$C_CLIENT_PORT" && is_uint "$C_CONTROLLER_PORT"
}

require_cluster() {
  load_cluster || die "no cluster has been started in $STATE_DIR (run: scripts/kafka.sh start)"
}

node_dir() { printf '%s\n' "$STATE_DIR/node-$1"; }
client_port() { printf '%s\n' "$((C_CLIENT_PORT + $1 - 1))"; }
controller_port() { printf '%s\n' "$((C_CONTROLLER_PORT + $1 - 1))"; }
node_log() { printf '%s\n' "$STATE_DIR/node-$1/kafka.log"; }

bootstrap_servers() {
  local n out=""
  for ((n = 1; n <= C_NODES; n++)); do
    out+="${out:+,}127.0.0.1:$(client_port "$n")"
  done
  printf '%s\n' "$out"
}

# Prints the pid of node $1 if it is running. A pid file alone is not proof
# (pids get reused), so the process must also be a JVM running this node's
# server.properties.
node_pid() {
  local pidfile pid cmd
  pidfile="$(node_dir "$1")/kafka.pid"
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  is_uint "$pid" || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  else
    cmd="$(ps -o args= -p "$pid" 2>/dev/null)" || return 1
  fi
  [[ "$cmd" == *"$(node_dir "$1")/server.properties"* ]] || return 1
  printf '%s\n' "$pid"
}

# True when something accepts TCP connections on 127.0.0.1:$1. Uses bash's
# /dev/tcp so no netcat is needed; a closed loopback port fails instantly.
port_open() {
  (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Up = our process is alive and its client listener accepts connections.
node_up() {
  node_pid "$1" >/dev/null && port_open "$(client_port "$1")"
}

# Fails, naming the port (and its owner when ss can tell), if a port we are
# about to bind is already taken.
require_port_free() {
  local port="$1" what="$2" owner=""
  port_open "$port" || return 0
  if command -v ss >/dev/null 2>&1; then
    owner="$(ss -Hltnp "sport = :$port" 2>/dev/null |
      sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1, pid \2/p' | head -n 1)"
  fi
  die "port $port ($what) on 127.0.0.1 is already in use by another process${owner:+ ($owner)}; stop it, or choose other ports with KAFKA_PORT / KAFKA_CONTROLLER_PORT"
}

validate_node() {
  local n="$1"
  if ! is_uint "$n" || ((n < 1 || n > C_NODES)); then
    die "no node '$n': the cluster has nodes 1..$C_NODES"
  fi
}

# Empties the state dir, but only if it is one this script created: a
# mistyped KAFKA_STATE_DIR must never cost someone their files.
wipe_state() {
  if [[ -d "$STATE_DIR" && ! -e "$STATE_DIR/.kafka-sh-state" ]] &&
    [[ -n "$(find "$STATE_DIR" -mindepth 1 -maxdepth 1 -print -quit)" ]]; then
    die "refusing to wipe $STATE_DIR: it is not empty and was not created by this script (set KAFKA_STATE_DIR to an empty or new directory)"
  fi
  mkdir -p "$STATE_DIR"
  find "$STATE_DIR" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  : >"$STATE_DIR/.kafka-sh-state"
}

# ---------------------------------------------------------------- configs --

broker_log4j() {
  cat <<'EOF'
# Generated by kafka-client's scripts/kafka.sh: broker logging. The JVM's
# stdout is redirected to node-N/kafka.log, so INFO and up land there.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# Per-request and per-partition chatter would drown the interesting lines.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
}

# Writes node $1's server.properties for a cluster of $C_NODES nodes.
write_server_properties() {
  local n="$1" voters="" i rf min_isr
  for ((i = 1; i <= C_NODES; i++)); do
    voters+="${voters:+,}$i@127.0.0.1:$(controller_port "$i")"
  done
  if ((C_NODES >= 3)); then
    rf=3 min_isr=2
  else
    rf=1 min_isr=1
  fi
  cat >"$(node_dir "$n")/server.properties" <<EOF
# Generated by kafka-client's scripts/kafka.sh for node $n of $C_NODES.
# Every node is broker and controller (combined mode) to keep the process
# count low; the controller quorum is static, so formatting needs no
# directory ids and a restarted node rejoins by itself.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$(client_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(client_port "$n")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$(node_dir "$n")/data

# Replication sized to the cluster: with 3 nodes, acks=all survives one node
# down, which is what the kill/restart tests exercise.
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr

# Test friendly: no waiting for more members before the first rebalance,
# both group protocols (classic and KIP-848), topics created on demand and
# deletable. (Kafka 4.3 deprecates group.coordinator.rebalance.protocols and
# logs a warning for it; listing only these two also leaves the KIP-1071
# "streams" protocol off, which this client does not speak.)
group.initial.rebalance.delay.ms=0
group.coordinator.rebalance.protocols=classic,consumer
num.partitions=1
auto.create.topics.enable=true
delete.topic.enable=true
EOF
}

# A fresh random cluster id: 16 random bytes in URL-safe base64 without
# padding, the format Kafka's Uuid uses (saves a JVM start for random-uuid).
new_cluster_id() {
  head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

# Formats every node's storage in parallel (each is a JVM start). The tool
# runs for a second, so C1-only JIT and the serial GC save CPU that the
# other nodes' formatting needs on a 2-core machine (2.6s -> 1.6s for 3).
format_storage() {
  local cp n pids=() failed=""
  cp="$(kafka_classpath)"
  for ((n = 1; n <= C_NODES; n++)); do
    "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$cp" \
      -Dlog4j2.configurationFile="$STATE_DIR/log4j2.properties" \
      kafka.tools.StorageTool format \
      --config "$(node_dir "$n")/server.properties" \
      --cluster-id "$C_CLUSTER_ID" \
      >"$(node_dir "$n")/format.log" 2>&1 </dev/null &
    pids+=("$!")
  done
  for ((n = 1; n <= C_NODES; n++)); do
    wait "${pids[n - 1]}" || failed+=" $n"
  done
  if [[ -n "$failed" ]]; then
    for n in $failed; do
      say "formatting node $n failed; $(node_dir "$n")/format.log says:"
      tail -n 40 "$(node_dir "$n")/format.log" >&2 || true
    done
    die "could not format KRaft storage"
  fi
}

# ---------------------------------------------------------------- process --

# Starts node $1 in the background with its existing data and records where
# its log was, so that wait_ready only trusts lines written by this run.
launch_node() {
  local n="$1" dir log cp
  dir="$(node_dir "$n")"
  log="$(node_log "$n")"
  cp="$(kafka_classpath)"
  touch "$log"
  wc -c <"$log" | tr -d ' ' >"$dir/log.offset"
  printf '\n===== kafka.sh: starting node %s at %s =====\n' "$n" "$(date '+%F %T')" >>"$log"
  # nohup so a closing terminal does not take the broker down; all standard
  # fds and our lock fds are redirected/closed so that a caller capturing our
  # output (e.g. $(kafka.sh start)) is not kept waiting on the broker.
  # shellcheck disable=SC2086 # option strings are deliberately word-split
  nohup "$JAVA" $HEAP_OPTS \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$STATE_DIR/log4j2.properties" \
    -Dkafka.logs.dir="$dir" \
    $EXTRA_JVM_OPTS \
    -cp "$cp" kafka.Kafka "$dir/server.properties" \
    >>"$log" 2>&1 </dev/null 8>&- 9>&- &
  printf '%s\n' "$!" >"$dir/kafka.pid"
}

# True once node $1 has logged "Kafka Server started" (after the offset
# recorded at launch) AND accepts connections. The log line comes after the
# broker has registered and been unfenced by the controller quorum, i.e. it
# is ready for clients; the port alone opens earlier than that.
node_ready() {
  local n="$1" offset
  offset="$(cat "$(node_dir "$n")/log.offset" 2>/dev/null || echo 0)"
  port_open "$(client_port "$n")" &&
    tail -c "+$((offset + 1))" "$(node_log "$n")" | grep -q 'Kafka Server started'
}

# Hard-kills the listed nodes (used when a start fails half-way).
kill_nodes() {
  local n pid
  for n in "$@"; do
    if pid="$(node_pid "$n")"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(node_dir "$n")/kafka.pid"
  done
}

# Waits until every listed node is ready; on a timeout or an early exit,
# shows the culprit's log tail, kills the nodes it was waiting for (so no
# half-started cluster holds the ports) and fails.
wait_ready() {
  local deadline=$(($(now_ms) + START_TIMEOUT * 1000)) pending=("$@") left n
  while ((${#pending[@]} > 0)); do
    left=()
    for n in "${pending[@]}"; do
      if ! node_pid "$n" >/dev/null; then
        say "node $n exited during start-up; last 40 lines of $(node_log "$n"):"
        tail -n 40 "$(node_log "$n")" >&2 || true
        kill_nodes "$@"
        die "node $n did not start (full log: $(node_log "$n"))"
      fi
      node_ready "$n" || left+=("$n")
    done
    pending=("${left[@]}")
    ((${#pending[@]} == 0)) && break
    if (($(now_ms) > deadline)); then
      n="${pending[0]}"
      say "last 40 lines of $(node_log "$n"):"
      tail -n 40 "$(node_log "$n")" >&2 || true
      kill_nodes "$@"
      die "node $n did not come up in ${START_TIMEOUT}s (KAFKA_START_TIMEOUT); full log: $(node_log "$n")"
    fi
    sleep 0.2
  done
}

# Stops the listed nodes cleanly: SIGTERM to all at once (a Kafka broker then
# does a controlled shutdown), SIGKILL to whatever still runs after
# $STOP_TIMEOUT seconds. Signalling together keeps the controller quorum
# alive while the brokers hand over leadership.
stop_nodes() {
  local n pid pids=() stopping=() deadline killed=""
  for n in "$@"; do
    if pid="$(node_pid "$n")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      stopping+=("$n")
    else
      rm -f "$(node_dir "$n")/kafka.pid"
    fi
  done
  ((${#pids[@]} > 0)) || return 0
  deadline=$(($(now_ms) + STOP_TIMEOUT * 1000))
  local i alive=1
  while ((alive)); do
    alive=0
    for i in "${!pids[@]}"; do
      kill -0 "${pids[i]}" 2>/dev/null && alive=1
    done
    ((alive)) || break
    if (($(now_ms) > deadline)); then
      for i in "${!pids[@]}"; do
        if kill -0 "${pids[i]}" 2>/dev/null; then
          kill -KILL "${pids[i]}" 2>/dev/null || true
          killed+=" ${stopping[i]}"
        fi
      done
      break
    fi
    sleep 0.1
  done
  [[ -z "$killed" ]] || say "node(s)$killed did not stop within ${STOP_TIMEOUT}s (KAFKA_STOP_TIMEOUT) and were killed"
  for i in "${!pids[@]}"; do
    while kill -0 "${pids[i]}" 2>/dev/null; do sleep 0.05; done
    rm -f "$(node_dir "${stopping[i]}")/kafka.pid"
  done
}

running_nodes() {
  local n out=()
  for ((n = 1; n <= C_NODES; n++)); do
    node_pid "$n" >/dev/null && out+=("$n")
  done
  printf '%s\n' "${out[*]-}"
}

all_nodes() {
  local n
  for ((n = 1; n <= C_NODES; n++)); do printf '%s ' "$n"; done
}

# --------------------------------------------------------------- commands --

cmd_start() {
  local nodes=1
  while (($# > 0)); do
    case "$1" in
      --nodes) (($# >= 2)) || die "--nodes needs a value (1 or 3)"; nodes="$2"; shift 2 ;;
      --nodes=*) nodes="${1#--nodes=}"; shift ;;
      -h | --help) usage; return 0 ;;
      *) die "unknown option for start: $1 (see --help)" ;;
    esac
  done
  [[ "$nodes" == 1 || "$nodes" == 3 ]] ||
    die "--nodes must be 1 or 3 (a 3-node quorum tolerates one node down; 2 nodes would not), got '$nodes'"
  require_java
  lock 9 "$STATE_DIR.lock"

  # Already running? Same topology and healthy: nothing to do. Different
  # topology: refuse, because someone else (another test run) may be using it.
  if load_cluster; then
    local running
    running="$(running_nodes)"
    if [[ -n "$running" ]]; then
      if [[ "$C_NODES" != "$nodes" || "$C_CLIENT_PORT" != "$CLIENT_PORT_BASE" ||
        "$C_CONTROLLER_PORT" != "$CONTROLLER_PORT_BASE" || "$C_VERSION" != "$KAFKA_VERSION" ]]; then
        die "a $C_NODES-node Kafka $C_VERSION cluster (port $C_CLIENT_PORT) is already running from $STATE_DIR; run 'scripts/kafka.sh stop' first to replace it with a $nodes-node one"
      fi
      local n healthy=1
      for ((n = 1; n <= C_NODES; n++)); do node_up "$n" || healthy=0; done
      if ((healthy)); then
        say "a $nodes-node Kafka $KAFKA_VERSION cluster is already running and healthy at $(bootstrap_servers); nothing to do"
        bootstrap_servers
        return 0
      fi
      say "the $nodes-node cluster is only partly up (running: $running); stopping it to start afresh"
      # shellcheck disable=SC2046 # node ids are plain numbers
      stop_nodes $(all_nodes)
    fi
  fi

  fetch_kafka

  C_NODES="$nodes" C_CLIENT_PORT="$CLIENT_PORT_BASE" C_CONTROLLER_PORT="$CONTROLLER_PORT_BASE"
  C_VERSION="$KAFKA_VERSION" C_CACHE_DIR="$CACHE_DIR" C_CLUSTER_ID="$(new_cluster_id)"
  local n
  for ((n = 1; n <= C_NODES; n++)); do
    require_port_free "$(client_port "$n")" "client listener of node $n"
    require_port_free "$(controller_port "$n")" "controller listener of node $n"
  done

  local t0
  t0="$(now_ms)"
  wipe_state
  {
    printf 'nodes=%s\nclient_port=%s\ncontroller_port=%s\n' "$C_NODES" "$C_CLIENT_PORT" "$C_CONTROLLER_PORT"
    printf 'version=%s\ncache_dir=%s\ncluster_id=%s\n' "$C_VERSION" "$C_CACHE_DIR" "$C_CLUSTER_ID"
  } >"$STATE_DIR/cluster.conf"
  broker_log4j >"$STATE_DIR/log4j2.properties"
  for ((n = 1; n <= C_NODES; n++)); do
    mkdir -p "$(node_dir "$n")/data"
    write_server_properties "$n"
  done
  format_storage
  say "format: KRaft storage of $C_NODES node(s) formatted in $(since "$t0") (cluster id $C_CLUSTER_ID)"

  t0="$(now_ms)"
  for ((n = 1; n <= C_NODES; n++)); do launch_node "$n"; done
  # shellcheck disable=SC2046
  wait_ready $(all_nodes)
  say "start-up: $C_NODES node(s) ready in $(since "$t0") at $(bootstrap_servers)"
  for ((n = 1; n <= C_NODES; n++)); do
    say "  node $n: pid $(node_pid "$n"), port $(client_port "$n"), log $(node_log "$n")"
  done
  bootstrap_servers
}

cmd_stop() {
  lock 9 "$STATE_DIR.lock"
  if ! load_cluster; then
    say "nothing to stop (no cluster in $STATE_DIR)"
    return 0
  fi
  local targets t0
  if (($# > 0)); then
    validate_node "$1"
    targets="$1"
  else
    targets="$(running_nodes)"
  fi
  if [[ -z "$targets" ]] || { (($# > 0)) && ! node_pid "$1" >/dev/null; }; then
    if (($# > 0)); then say "nothing to stop: node $1 is not running"; else say "nothing to stop: no node is running"; fi
    return 0
  fi
  t0="$(now_ms)"
  # shellcheck disable=SC2086
  stop_nodes $targets
  say "stopped node(s) $targets in $(since "$t0")"
}

cmd_kill() {
  (($# == 1)) || die "usage: kill N (node id 1..3)"
  lock 9 "$STATE_DIR.lock"
  require_cluster
  validate_node "$1"
  local pid
  if ! pid="$(node_pid "$1")"; then
    say "node $1 is not running; nothing to kill"
    return 0
  fi
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$(node_dir "$1")/kafka.pid"
  say "killed node $1 (pid $pid) with SIGKILL"
}

cmd_restart() {
  (($# == 1)) || die "usage: restart N (node id 1..3)"
  require_java
  lock 9 "$STATE_DIR.lock"
  require_cluster
  validate_node "$1"
  # The node must come back on the Kafka build it was formatted with.
  CACHE_DIR="$C_CACHE_DIR" KAFKA_VERSION="$C_VERSION"
  is_fetched || die "Kafka $C_VERSION is no longer cached in $CACHE_DIR; run 'scripts/kafka.sh start' again"
  local n="$1" t0
  if node_pid "$n" >/dev/null; then
    say "node $n is running; stopping it cleanly first"
    stop_nodes "$n"
  fi
  require_port_free "$(client_port "$n")" "client listener of node $n"
  require_port_free "$(controller_port "$n")" "controller listener of node $n"
  t0="$(now_ms)"
  launch_node "$n"
  wait_ready "$n"
  say "start-up: node $n back in $(since "$t0") (pid $(node_pid "$n"), port $(client_port "$n"), log $(node_log "$n"))"
}

cmd_status() {
  if ! load_cluster; then
    say "no cluster has been started in $STATE_DIR"
    return 1
  fi
  local n pid state rc=0
  printf '%-5s %-8s %-6s %-11s %s\n' node pid port controller state
  for ((n = 1; n <= C_NODES; n++)); do
    if pid="$(node_pid "$n")"; then
      if port_open "$(client_port "$n")"; then state=up; else state=starting rc=1; fi
    else
      pid=- state=down rc=1
    fi
    printf '%-5s %-8s %-6s %-11s %s\n' "$n" "$pid" "$(client_port "$n")" "$(controller_port "$n")" "$state"
  done
  printf 'kafka %s, %s node(s), bootstrap %s, state %s\n' "$C_VERSION" "$C_NODES" "$(bootstrap_servers)" "$STATE_DIR"
  return "$rc"
}

cmd_logs() {
  if ! load_cluster; then
    say "no cluster has been started in $STATE_DIR, so there are no logs"
    return 1
  fi
  local n
  for ((n = 1; n <= C_NODES; n++)); do node_log "$n"; done
}

cmd_classpath() {
  require_java
  fetch_kafka
  kafka_classpath
}

usage() {
  cat <<EOF
Usage: scripts/kafka.sh COMMAND [ARGS]

Runs a real Apache Kafka $KAFKA_VERSION (KRaft, broker+controller per node) on
127.0.0.1 for kafka-client's tests, examples and benchmarks. Needs Java $MIN_JAVA+
and, for the first run only, mvn (jars are cached in $CACHE_DIR).

Commands:
  start [--nodes 1|3]  Fetch Kafka if needed, wipe the state dir, format KRaft
                       storage and start the cluster; wait until it serves.
                       1 node (default): client 127.0.0.1:9092, controller :19092.
                       3 nodes: clients 127.0.0.1:9092,9093,9094 (controllers
                       19092-19094), replication factor 3, min.insync.replicas 2.
                       Prints the bootstrap servers on stdout (progress and
                       timings go to stderr). If the same topology is already
                       up and healthy it does nothing; if a different one runs
                       it fails: run 'stop' first. A partly-down cluster of the
                       same topology is stopped and started afresh.
  stop [N]             Stop all nodes (or node N): SIGTERM, then SIGKILL after
                       KAFKA_STOP_TIMEOUT seconds. Fine when nothing runs.
  kill N               SIGKILL node N (1..3) at once, as a crash would.
  restart N            Start node N again with its existing data (stopping it
                       cleanly first if it runs) and wait until it is back.
                       Also works after 'stop' or 'kill'.
  status               One line per node: id, pid, client port, controller
                       port, up/starting/down. Exit 0 only if every node is up.
  logs                 Print the log file path of each node (one per line):
                       <state dir>/node-N/kafka.log, appended to on restart.
  classpath            Print the Java classpath of the Kafka jars (fetching
                       them first if needed). Only the classpath goes to stdout.
  fetch                Only download Kafka into the cache.
  -h, --help           This help.

Java tools on the classpath (Kafka $KAFKA_VERSION class names):
  CP="\$(scripts/kafka.sh classpath)"
  java -cp "\$CP" org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 \\
       --create --topic t --partitions 3 --replication-factor 1
  java -cp "\$CP" org.apache.kafka.tools.ConsoleProducer --bootstrap-server 127.0.0.1:9092 --topic t
  java -cp "\$CP" org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server 127.0.0.1:9092 \\
       --topic t --from-beginning --max-messages 2
  java -cp "\$CP" org.apache.kafka.tools.ProducerPerformance --topic t --num-records 100000 \\
       --record-size 100 --throughput -1 --producer-props bootstrap.servers=127.0.0.1:9092
  java -cp "\$CP" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server 127.0.0.1:9092 \\
       --topic t --messages 100000
  Also: org.apache.kafka.tools.consumer.group.ConsumerGroupCommand (kafka-consumer-groups),
  org.apache.kafka.tools.MetadataQuorumCommand, kafka.tools.StorageTool, kafka.Kafka.

Environment:
  KAFKA_VERSION          Kafka release to fetch and run (default $DEFAULT_KAFKA_VERSION).
  KAFKA_CACHE_DIR        Jar cache (default \$HOME/.cache/kafka-client/kafka-\$KAFKA_VERSION).
  KAFKA_STATE_DIR        Data, configs, pid files and logs (default <repo>/target/kafka);
                         wiped on every start.
  KAFKA_START_TIMEOUT    Seconds to wait for the nodes to serve (default 90).
  KAFKA_STOP_TIMEOUT     Seconds to wait after SIGTERM before SIGKILL (default 30).
  KAFKA_PORT             First client port (default 9092; node N uses +N-1).
  KAFKA_CONTROLLER_PORT  First controller port (default 19092).
  KAFKA_HEAP_OPTS        Broker heap (default "-Xmx1g -Xms256m").
  KAFKA_JVM_OPTS         Extra broker JVM options.
  KAFKA_LOG4J_VERSION    log4j2 version added for logging (default $DEFAULT_LOG4J_VERSION).
  JAVA_HOME              Java to use instead of the 'java' on PATH.
EOF
}

main() {
  check_env_numbers
  local cmd="${1:-}"
  (($# > 0)) && shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill) cmd_kill "$@" ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status "$@" ;;
    logs) cmd_logs "$@" ;;
    classpath) cmd_classpath "$@" ;;
    fetch) require_java; fetch_kafka ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) say "unknown command: $cmd"; usage >&2; exit 2 ;;
  esac
}

main "$@"
