#!/usr/bin/env bash
# Side-by-side benchmarks of kafka-client, the Java client and librdkafka on one local broker.
#
# For every scenario it runs our perf examples (examples/producer_perf.rs,
# examples/consumer_perf.rs), the Java perf tools of the same Kafka release as the broker
# (org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance) and librdkafka through
# the rdkafka crate (benches/rdkafka-perf, its own crate and workspace). All three take the
# same flags and print the same summary line, so one parser reads them all.
#
# Fairness rules it follows:
#   - every client gets the same settings, spelled out below (acks, idempotence, linger,
#     batch size, compression, in-flight, buffer memory, socket buffers, fetch sizes);
#   - the same payload bytes (random capital letters, a window of one pre-generated buffer);
#   - a fresh topic with the same partitions for every producer run;
#   - one unmeasured warm-up run per client and scenario, then --reps runs with the clients'
#     order rotated each repetition; the report shows the median and the range;
#   - CPU time (user + sys) of the client process only, per million records, because the
#     clients and the broker share the machine's cores.
#
# Scenarios (--scenarios, comma separated; default all):
#   p100-acks1    producer, 100-byte records, acks=1, no idempotence, no compression
#   p100-idem     producer, 100-byte records, acks=all, idempotent
#   p1k-lz4       producer, 1 KiB records, acks=1, no idempotence, lz4
#   c100          consumer, 100-byte records from offset 0 (warm page cache); ours and
#                 librdkafka assign the partitions manually, Java's tool always joins a
#                 group, so its fetch.* columns (which leave the group join out) are compared
#   latency       producer send-to-ack latency at a fixed rate (about half the slowest
#                 client's median maximum of p100-acks1, or --latency-rate), p100-acks1 settings
#
# Results: target/bench/<UTC time>/ (or --out): results.tsv (one line per run), report.md
# (medians and ratios as in BENCHMARKS.md), env.txt (machine, versions, load), raw/ (every
# run's stdout, stderr and time). Not part of the test suite: scripts/test.sh and .ci/run
# never call it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

usage() {
  cat <<'EOF'
usage: benches/compare.sh [options]

  --bootstrap HOST:PORT  use this running broker (single node) instead of starting a
                         dedicated one; topics named bench-* are created and deleted on it
  --broker-port P        client port of the dedicated broker (default 49092; controller P+100)
  --scenarios LIST       comma-separated subset of p100-acks1,p100-idem,p1k-lz4,c100,latency
  --clients LIST         comma-separated subset of ours,java,rdkafka (default all three)
  --reps N               measured repetitions per client and scenario (default 3, at least 3
                         for a median worth the name)
  --records N            records for the 100-byte scenarios (default 1000000)
  --records-1k N         records for the 1 KiB scenario (default 300000)
  --partitions N         partitions of every topic (default 1)
  --latency-rate R       records/sec of the latency scenario (default: half the slowest
                         client's median of p100-acks1 in this run)
  --latency-seconds S    length of a latency run (default 10)
  --out DIR              results directory (default target/bench/<UTC time>)
  --no-build             use the binaries already built
  -h, --help             this text

Environment: BENCH_JAVA_OPTS (default: the heap and GC flags of Kafka's
kafka-producer-perf-test.sh), JAVA_HOME.
EOF
}

# ---- options ------------------------------------------------------------------------------
BOOTSTRAP=""
BROKER_PORT=49092
SCENARIOS="p100-acks1,p100-idem,p1k-lz4,c100,latency"
CLIENTS="ours,java,rdkafka"
REPS=3
RECORDS=1000000
RECORDS_1K=300000
PARTITIONS=1
LATENCY_RATE=""
LATENCY_SECONDS=10
OUT=""
BUILD=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bootstrap) BOOTSTRAP="$2"; shift 2 ;;
    --broker-port) BROKER_PORT="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --clients) CLIENTS="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --records) RECORDS="$2"; shift 2 ;;
    --records-1k) RECORDS_1K="$2"; shift 2 ;;
    --partitions) PARTITIONS="$2"; shift 2 ;;
    --latency-rate) LATENCY_RATE="$2"; shift 2 ;;
    --latency-seconds) LATENCY_SECONDS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$REPS" =~ ^[0-9]+$ && "$REPS" -ge 1 ]] || { echo "compare.sh: --reps must be >= 1" >&2; exit 2; }
[[ "$REPS" -ge 3 ]] || echo "compare.sh: note: fewer than 3 repetitions; the median means little" >&2
IFS=, read -r -a SCENARIO_LIST <<<"$SCENARIOS"
IFS=, read -r -a CLIENT_LIST <<<"$CLIENTS"
for s in "${SCENARIO_LIST[@]}"; do
  case "$s" in p100-acks1|p100-idem|p1k-lz4|c100|latency) ;; *) echo "compare.sh: unknown scenario $s" >&2; exit 2 ;; esac
done
for c in "${CLIENT_LIST[@]}"; do
  case "$c" in ours|java|rdkafka) ;; *) echo "compare.sh: unknown client $c" >&2; exit 2 ;; esac
done

[[ -x /usr/bin/time ]] || { echo "compare.sh: needs GNU time (/usr/bin/time; Debian package 'time')" >&2; exit 1; }
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# The JVM flags Kafka's own kafka-producer-perf-test.sh / kafka-consumer-perf-test.sh use
# (KAFKA_HEAP_OPTS=-Xmx512M, KAFKA_JVM_PERFORMANCE_OPTS of kafka-run-class.sh).
JAVA_OPTS_DEFAULT="-Xmx512M -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"
read -r -a JAVA_OPTS <<<"${BENCH_JAVA_OPTS:-$JAVA_OPTS_DEFAULT}"

RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${OUT:-$REPO/target/bench/$RUN_ID}"
mkdir -p "$OUT/raw"
RESULTS="$OUT/results.tsv"
printf 'scenario\tclient\trep\trecords\trecords_per_sec\tmb_per_sec\tavg_ms\tmax_ms\tp50_ms\tp95_ms\tp99_ms\tp999_ms\tuser_s\tsys_s\twall_s\tmax_rss_kb\tcpu_s_per_M\tload1\n' >"$RESULTS"
log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }

# ---- settings: one place, the same for every client ---------------------------------------
# Producer settings every client takes under the same (Java) name.
COMMON_PRODUCER="linger.ms=5 batch.size=16384 max.in.flight.requests.per.connection=5"
# buffer.memory = 32 MiB for all. librdkafka's name for it is queue.buffering.max.kbytes; its
# separate message-count bound is lifted so that only bytes bind, as in Java.
OURS_PRODUCER_EXTRA="buffer.memory=33554432"
# Socket buffers: kafka-client and librdkafka (socket.*.buffer.bytes=0) leave them to the
# OS; -1 tells Java to do the same instead of its 128 KiB / 32 KiB.
JAVA_PRODUCER_EXTRA="buffer.memory=33554432 send.buffer.bytes=-1 receive.buffer.bytes=-1"
RDKAFKA_PRODUCER_EXTRA="queue.buffering.max.kbytes=32768 queue.buffering.max.messages=10000000"
scenario_props() {
  case "$1" in
    p100-acks1|latency) echo "acks=1 enable.idempotence=false compression.type=none" ;;
    p100-idem) echo "acks=all enable.idempotence=true compression.type=none" ;;
    p1k-lz4) echo "acks=1 enable.idempotence=false compression.type=lz4" ;;
  esac
}
scenario_size() { case "$1" in p1k-lz4) echo 1024 ;; *) echo 100 ;; esac; }
scenario_records() { case "$1" in p1k-lz4) echo "$RECORDS_1K" ;; *) echo "$RECORDS" ;; esac; }
# Consumer settings: Java's ConsumerPerformance forces check.crcs=false (librdkafka's
# default too); fetch sizes and waits are the Java defaults, spelled out. librdkafka calls
# fetch.max.wait.ms fetch.wait.max.ms. max.partition.fetch.bytes is --fetch-size for all.
COMMON_CONSUMER="fetch.min.bytes=1 fetch.max.bytes=52428800 check.crcs=false"
FETCH_SIZE=1048576
# librdkafka stops fetching a partition once queued.min.messages (100000) are queued and then
# waits fetch.queue.backoff.ms (default 1000) before the next fetch. Java and kafka-client
# fetch again as soon as the buffered data is handed out; 0 gives librdkafka the same
# behaviour (with the default it read 0.3-0.5 M records/s here, waiting, not computing).
RDKAFKA_CONSUMER_EXTRA="fetch.queue.backoff.ms=0"

# ---- build ----------------------------------------------------------------------------------
HAVE_CONSUMER=0
[[ -f "$REPO/examples/consumer_perf.rs" ]] && HAVE_CONSUMER=1
OURS_PRODUCER="$REPO/target/release/examples/producer_perf"
OURS_CONSUMER="$REPO/target/release/examples/consumer_perf"
CLI="$REPO/target/release/examples/cli"
RDK_DIR="$REPO/target/rdkafka-perf"
RDK_PRODUCER="$RDK_DIR/release/rdkafka-producer-perf"
RDK_CONSUMER="$RDK_DIR/release/rdkafka-consumer-perf"
if [[ $BUILD == 1 ]]; then
  examples=(--example producer_perf --example cli)
  [[ $HAVE_CONSUMER == 1 ]] && examples+=(--example consumer_perf)
  log "building kafka-client's examples (release)"
  cargo build --release --quiet "${examples[@]}"
  log "building benches/rdkafka-perf (release; librdkafka from source the first time, a few minutes)"
  cargo build --release --quiet --manifest-path benches/rdkafka-perf/Cargo.toml --target-dir "$RDK_DIR"
fi
CP="$(scripts/kafka.sh classpath 2>/dev/null)"

# ---- broker ---------------------------------------------------------------------------------
BENCH_STATE="$REPO/target/kafka-bench"
broker_env() { KAFKA_PORT="$BROKER_PORT" KAFKA_CONTROLLER_PORT="$((BROKER_PORT + 100))" KAFKA_STATE_DIR="$BENCH_STATE" "$@"; }
CREATED_TOPICS=()
cleanup() {
  local rc=$?
  if [[ ${#CREATED_TOPICS[@]} -gt 0 ]]; then
    "$CLI" -b "$BOOTSTRAP" topics delete "${CREATED_TOPICS[@]}" >/dev/null 2>&1 || true
  fi
  if [[ ${OWN_BROKER:-0} == 1 ]]; then
    log "stopping the dedicated broker"
    broker_env scripts/kafka.sh stop >&2 || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [[ -z "$BOOTSTRAP" ]]; then
  OWN_BROKER=1
  log "starting a dedicated broker on 127.0.0.1:$BROKER_PORT (state in $BENCH_STATE)"
  BOOTSTRAP="$(broker_env scripts/kafka.sh start 2>>"$OUT/raw/broker-start.log" | tail -1)"
fi
log "broker: $BOOTSTRAP; results in $OUT"

# ---- environment ----------------------------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "rustc: $(rustc --version)"
  echo "java: $("$JAVA" -version 2>&1 | head -1)"
  echo "kafka: $(basename "$(echo "$CP" | tr ':' '\n' | grep -m1 'kafka-clients-')" .jar) (broker and Java tools)"
  sys_version="$(grep -A1 '^name = "rdkafka-sys"' benches/rdkafka-perf/Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')"
  echo "librdkafka: ${sys_version#*+} (bundled in rdkafka-sys $sys_version), rdkafka crate $(grep -A1 '^name = "rdkafka"$' benches/rdkafka-perf/Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')"
  echo "kafka-client: $(git rev-parse --short HEAD) ($(git log -1 --format=%cs))"
  echo "java opts: ${JAVA_OPTS[*]}"
  echo "scenarios: $SCENARIOS; clients: $CLIENTS; reps: $REPS; records: $RECORDS (100 B), $RECORDS_1K (1 KiB); partitions: $PARTITIONS"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/env.txt"

# ---- running one client ---------------------------------------------------------------------
TOPIC_SEQ=0
new_topic() { # SCENARIO: creates a fresh topic and names it in $TOPIC
  TOPIC_SEQ=$((TOPIC_SEQ + 1))
  TOPIC="bench-$1-$RUN_ID-$TOPIC_SEQ"
  "$CLI" -b "$BOOTSTRAP" topics create "$TOPIC" --partitions "$PARTITIONS" --replication-factor 1 >/dev/null </dev/null
  CREATED_TOPICS+=("$TOPIC")
}
delete_topics() {
  if [[ ${#CREATED_TOPICS[@]} -gt 0 ]]; then
    "$CLI" -b "$BOOTSTRAP" topics delete "${CREATED_TOPICS[@]}" >/dev/null || log "warning: could not delete some topics"
    CREATED_TOPICS=()
  fi
}

# timed NAME CMD...: runs CMD with stdout/stderr/time in raw/NAME.*; returns its exit status.
timed() {
  local name="$1"; shift
  /usr/bin/time -f '%U %S %e %M' -o "$OUT/raw/$name.time" "$@" >"$OUT/raw/$name.out" 2>"$OUT/raw/$name.err" </dev/null
}

# producer_cmd CLIENT SCENARIO TOPIC RECORDS THROUGHPUT: the command line, one word per line.
# shellcheck disable=SC2086 # the property lists split into words on purpose
producer_cmd() {
  local client="$1" scenario="$2" topic="$3" records="$4" rate="$5"
  local size props
  size="$(scenario_size "$scenario")"
  props="$(scenario_props "$scenario") $COMMON_PRODUCER"
  local common=(--topic "$topic" --num-records "$records" --record-size "$size" --throughput "$rate")
  case "$client" in
    ours) printf '%s\n' "$OURS_PRODUCER" --bootstrap-server "$BOOTSTRAP" "${common[@]}" --producer-props $props $OURS_PRODUCER_EXTRA ;;
    java) printf '%s\n' "$JAVA" "${JAVA_OPTS[@]}" -cp "$CP" org.apache.kafka.tools.ProducerPerformance "${common[@]}" \
            --producer-props "bootstrap.servers=$BOOTSTRAP" $props $JAVA_PRODUCER_EXTRA ;;
    rdkafka) printf '%s\n' "$RDK_PRODUCER" --bootstrap-server "$BOOTSTRAP" "${common[@]}" --producer-props $props $RDKAFKA_PRODUCER_EXTRA ;;
  esac
}

consumer_cmd() { # CLIENT TOPIC RECORDS GROUP
  local client="$1" topic="$2" records="$3" group="$4"
  local common=(--bootstrap-server "$BOOTSTRAP" --topic "$topic" --num-records "$records" --timeout 30000 --fetch-size "$FETCH_SIZE")
  local p props=()
  for p in $COMMON_CONSUMER; do props+=(--command-property "$p"); done
  case "$client" in
    ours) printf '%s\n' "$OURS_CONSUMER" "${common[@]}" "${props[@]}" --command-property fetch.max.wait.ms=500 ;;
    # Java's tool always subscribes; a fresh group per run starts from offset 0.
    # --socket-buffer-size -1: the OS default, as the other two (the tool's default is 2 MiB).
    java) printf '%s\n' "$JAVA" "${JAVA_OPTS[@]}" -cp "$CP" org.apache.kafka.tools.ConsumerPerformance "${common[@]}" \
            "${props[@]}" --command-property fetch.max.wait.ms=500 --socket-buffer-size -1 --group "$group" ;;
    rdkafka) printf '%s\n' "$RDK_CONSUMER" "${common[@]}" "${props[@]}" --command-property fetch.wait.max.ms=500 \
               --command-property "$RDKAFKA_CONSUMER_EXTRA" ;;
  esac
}

# record SCENARIO CLIENT REP RUN_NAME KIND: parses a run's output into results.tsv.
record() {
  local scenario="$1" client="$2" rep="$3" name="$4" kind="$5" load="$6"
  local line user sys wall rss
  read -r user sys wall rss <"$OUT/raw/$name.time" || true
  if [[ $kind == producer ]]; then
    line="$(grep -E 'records sent, .* 99\.9th\.$' "$OUT/raw/$name.out" | tail -1 || true)"
    [[ -n "$line" ]] || { log "  $name: no summary line (see $OUT/raw/$name.err)"; return 1; }
    echo "$line" | sed -E 's/^([0-9]+) records sent, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\), ([0-9.]+) ms avg latency, ([0-9.]+) ms max latency, ([0-9]+) ms 50th, ([0-9]+) ms 95th, ([0-9]+) ms 99th, ([0-9]+) ms 99\.9th\.$/\1 \2 \3 \4 \5 \6 \7 \8 \9/' |
      while read -r n rate mb avg max p50 p95 p99 p999; do
        awk -v s="$scenario" -v c="$client" -v r="$rep" -v n="$n" -v rate="$rate" -v mb="$mb" -v avg="$avg" -v max="$max" \
          -v p50="$p50" -v p95="$p95" -v p99="$p99" -v p999="$p999" -v u="$user" -v sy="$sys" -v w="$wall" -v rss="$rss" -v l="$load" \
          'BEGIN { printf "%s\t%s\t%s\t%d\t%.1f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\n", s, c, r, n, rate, mb, avg, max, p50, p95, p99, p999, u, sy, w, rss, (u + sy) * 1e6 / n, l }'
      done >>"$RESULTS"
  else
    line="$(grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2} ' "$OUT/raw/$name.out" | tail -1 || true)"
    [[ -n "$line" ]] || { log "  $name: no summary line (see $OUT/raw/$name.err)"; return 1; }
    # start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s
    echo "$line" | awk -F', ' -v s="$scenario" -v c="$client" -v r="$rep" -v u="$user" -v sy="$sys" -v w="$wall" -v rss="$rss" -v l="$load" \
      '{ printf "%s\t%s\t%s\t%d\t%.1f\t%.2f\t-\t-\t-\t-\t-\t-\t%s\t%s\t%s\t%s\t%.3f\t%s\n", s, c, r, $5, $10, $9, u, sy, w, rss, (u + sy) * 1e6 / $5, l }' >>"$RESULTS"
  fi
  tail -1 "$RESULTS" | awk -F'\t' '{ printf "  %-8s rep %-6s %12.0f rec/s  %6.3f CPU s/M  p50 %s p99 %s p99.9 %s ms  (load %s)\n", $2, $3, $5, $17, $9, $11, $12, $18 }' >&2
}

# The clients in the order of repetition REP (rotated, so none always goes first).
rotated_clients() {
  local rep="$1" n=${#CLIENT_LIST[@]} i
  for ((i = 0; i < n; i++)); do echo "${CLIENT_LIST[$(((i + rep) % n))]}"; done
}

run_producer_scenario() { # SCENARIO THROUGHPUT RECORDS
  local scenario="$1" rate="$2" records="$3" rep client topic name load
  local warmup=$((records / 4))
  log "scenario $scenario: $(scenario_props "$scenario") $COMMON_PRODUCER, $(scenario_size "$scenario") B x $records, throughput $rate"
  for rep in warmup $(seq 1 "$REPS"); do
    while read -r client; do
      new_topic "$scenario"
      topic="$TOPIC"
      name="$scenario-$client-$rep"
      load="$(cut -d' ' -f1 /proc/loadavg)"
      mapfile -t cmd < <(producer_cmd "$client" "$scenario" "$topic" "$([[ $rep == warmup ]] && echo "$warmup" || echo "$records")" "$rate")
      echo "${cmd[*]}" >"$OUT/raw/$name.cmd"
      if ! timed "$name" "${cmd[@]}"; then
        log "  $name FAILED (exit status; see $OUT/raw/$name.err)"
        continue
      fi
      if [[ $rep == warmup ]]; then
        log "  $client warm-up done"
      else
        record "$scenario" "$client" "$rep" "$name" producer "$load" || true
      fi
    done < <(rotated_clients "$([[ $rep == warmup ]] && echo 0 || echo "$rep")")
  done
  delete_topics
}

run_consumer_scenario() {
  local records="$RECORDS" topic rep client name load
  new_topic c100
  topic="$TOPIC"
  log "scenario c100: filling $topic with $records records of 100 B (kafka-client's producer, p100-acks1 settings)"
  mapfile -t cmd < <(producer_cmd ours p100-acks1 "$topic" "$records" -1)
  timed c100-fill "${cmd[@]}" || { log "filling $topic failed; see $OUT/raw/c100-fill.err"; return 1; }
  log "scenario c100: $COMMON_CONSUMER max.partition.fetch.bytes=$FETCH_SIZE fetch.max.wait.ms=500 (librdkafka also $RDKAFKA_CONSUMER_EXTRA), $records records"
  for rep in warmup $(seq 1 "$REPS"); do
    while read -r client; do
      name="c100-$client-$rep"
      load="$(cut -d' ' -f1 /proc/loadavg)"
      mapfile -t cmd < <(consumer_cmd "$client" "$topic" "$records" "bench-c100-$RUN_ID-$client-$rep")
      echo "${cmd[*]}" >"$OUT/raw/$name.cmd"
      if ! timed "$name" "${cmd[@]}"; then
        log "  $name FAILED (exit status; see $OUT/raw/$name.err)"
        continue
      fi
      if [[ $rep == warmup ]]; then
        log "  $client warm-up done"
      else
        record c100 "$client" "$rep" "$name" consumer "$load" || true
      fi
    done < <(rotated_clients "$([[ $rep == warmup ]] && echo 0 || echo "$rep")")
  done
  delete_topics
}

# median SCENARIO CLIENT COLUMN: the median of a results.tsv column over the measured runs.
median() {
  awk -F'\t' -v s="$1" -v c="$2" -v col="$3" 'NR > 1 && $1 == s && $2 == c && $col != "-" { print $col }' "$RESULTS" |
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
range() { # SCENARIO CLIENT COLUMN: "min-max"
  awk -F'\t' -v s="$1" -v c="$2" -v col="$3" 'NR > 1 && $1 == s && $2 == c && $col != "-" { print $col }' "$RESULTS" |
    sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s–%s", lo, hi }'
}

# ---- run --------------------------------------------------------------------------------------
SKIPPED=()
for scenario in "${SCENARIO_LIST[@]}"; do
  case "$scenario" in
    p100-acks1|p100-idem|p1k-lz4)
      run_producer_scenario "$scenario" -1 "$(scenario_records "$scenario")" ;;
    c100)
      if [[ $HAVE_CONSUMER == 1 ]]; then
        run_consumer_scenario
      else
        SKIPPED+=("c100: examples/consumer_perf.rs is not on this branch yet (kafka-client's consumer has not landed), so there is nothing of ours to measure")
        log "scenario c100 skipped: ${SKIPPED[-1]#c100: }"
      fi ;;
    latency)
      rate="$LATENCY_RATE"
      if [[ -z "$rate" ]]; then
        slowest="$(for c in "${CLIENT_LIST[@]}"; do median p100-acks1 "$c" 5; done | grep . | sort -g | head -1)"
        if [[ -z "$slowest" ]]; then
          SKIPPED+=("latency: no --latency-rate and no p100-acks1 results in this run to derive it from")
          log "scenario latency skipped: ${SKIPPED[-1]#latency: }"
          continue
        fi
        # Half the slowest client's maximum, rounded down to two significant digits.
        rate="$(awk -v r="$slowest" 'BEGIN { h = r / 2; m = 10 ^ (int(log(h) / log(10)) - 1); printf "%d", int(h / m) * m }')"
      fi
      echo "latency rate: $rate records/sec" >>"$OUT/env.txt"
      run_producer_scenario latency "$rate" "$((rate * LATENCY_SECONDS))" ;;
  esac
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"

# ---- report -----------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "–"; else printf "%.2f", a / b }'; }
fmt_rate() { awk -v v="$1" 'BEGIN { if (v == "") print "–"; else printf "%.0f", v }'; }
{
  echo "Medians of $REPS runs (range in parentheses). Throughput in records/s; CPU = user + sys"
  echo "seconds of the client process per million records (lower is better). Ratios are ours /"
  echo "theirs: above 1 means we are faster for throughput, below 1 means we use less CPU."
  echo
  echo "| Scenario | ours rec/s | Java rec/s | librdkafka rec/s | ours/Java | ours/librdkafka | ours CPU s/M | Java CPU s/M | librdkafka CPU s/M | CPU ours/Java | CPU ours/librdkafka |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for s in p100-acks1 p100-idem p1k-lz4 c100; do
    grep -q "^$s	" "$RESULTS" || continue
    declare -A R=() C=()
    row="| $s"
    for c in ours java rdkafka; do R[$c]="$(median "$s" "$c" 5)"; C[$c]="$(median "$s" "$c" 17)"; done
    for c in ours java rdkafka; do row+=" | $(fmt_rate "${R[$c]}") ($(range "$s" "$c" 5 | awk -F'–' '{ if ($1 != "") printf "%.0f–%.0f", $1, $2 }'))"; done
    row+=" | $(ratio "${R[ours]}" "${R[java]}") | $(ratio "${R[ours]}" "${R[rdkafka]}")"
    for c in ours java rdkafka; do row+=" | ${C[$c]:-–}"; done
    row+=" | $(ratio "${C[ours]}" "${C[java]}") | $(ratio "${C[ours]}" "${C[rdkafka]}") |"
    echo "$row"
  done
  if grep -q "^latency	" "$RESULTS"; then
    echo
    echo "Latency at a fixed $(grep '^latency rate' "$OUT/env.txt" | cut -d' ' -f3) records/s (p100-acks1 settings), send to acknowledgement,"
    echo "milliseconds (whole ms: the Java tool's resolution); medians of $REPS runs:"
    echo
    echo "| Client | achieved rec/s | avg | p50 | p99 | p99.9 | max | CPU s/M |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for c in ours java rdkafka; do
      grep -q "^latency	$c	" "$RESULTS" || continue
      echo "| $c | $(fmt_rate "$(median latency "$c" 5)") | $(median latency "$c" 7) | $(median latency "$c" 9) ($(range latency "$c" 9)) | $(median latency "$c" 11) ($(range latency "$c" 11)) | $(median latency "$c" 12) ($(range latency "$c" 12)) | $(median latency "$c" 8) | $(median latency "$c" 17) |"
    done
  fi
  if [[ ${#SKIPPED[@]} -gt 0 ]]; then
    echo
    for s in "${SKIPPED[@]}"; do echo "- Skipped ${s%%:*}: ${s#*: }."; done
  fi
  echo
  echo "Load average (1 min) at the start of the measured runs: $(awk -F'\t' 'NR > 1 { print $18 }' "$RESULTS" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s to %s", lo, hi }')."
} >"$OUT/report.md"
log "done: $OUT/report.md"
cat "$OUT/report.md"
