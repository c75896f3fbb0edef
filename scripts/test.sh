#!/usr/bin/env bash
# The whole test suite, as CI runs it: unit and doc tests, the integration tests against a
# real single-node Kafka, then the failover tests against a real 3-node cluster.
#
# Brokers come from scripts/kafka.sh (fetched and cached on first use). This script stops
# every broker it started, also when a test fails.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    unit and single-node tests only
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
kafka=(bash "$root/scripts/kafka.sh")

quick=false
[[ "${1:-}" == "--quick" ]] && quick=true

cleanup() {
    "${kafka[@]}" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Compile first so broker start-up and compilation do not fight for the two cores.
cargo test --all-targets --no-run --quiet

# Brokers listen on KAFKA_PORT (default 9092) and the next two ports, as scripts/kafka.sh does.
port="${KAFKA_PORT:-9092}"

echo "== single node =="
"${kafka[@]}" stop >/dev/null 2>&1 || true
export KAFKA_BOOTSTRAP="127.0.0.1:$port"
"${kafka[@]}" start >/dev/null
# Integration tests are heavy against one broker on two cores: few at a time.
cargo test --lib --bins --tests --examples -- --test-threads="${TEST_THREADS:-2}"
cargo test --doc
# Benchmarks run once each in test mode, to keep them working (criterion takes no
# test-harness flags); speed is measured with `cargo bench` and benches/compare.sh.
cargo test --benches

if [[ "$quick" == true ]]; then
    exit 0
fi

echo "== 3-node cluster =="
"${kafka[@]}" stop >/dev/null
"${kafka[@]}" start --nodes 3 >/dev/null
export KAFKA_CLUSTER_BOOTSTRAP="127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
cargo test --features cluster-tests --test cluster -- --test-threads=1
