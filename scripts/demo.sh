#!/usr/bin/env bash
# The README's first command: starts a local Kafka broker when none is running, then runs the
# order-events demo (examples/order_events) against it: 1000 orders through five services,
# a progress line every second, and a summary with consistency checks. Arguments go to the
# demo (`scripts/demo.sh --orders 20000`, `scripts/demo.sh --help`).
#
# The broker keeps running afterwards; stop it with `scripts/kafka.sh stop`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# True when something accepts connections on 127.0.0.1:$1 (bash's /dev/tcp, no tools needed).
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

bootstrap="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
if [[ -z "${KAFKA_BOOTSTRAP:-}" ]] && ! listening 9092; then
    # Fetches Kafka on first use, then starts one node; its own progress goes to stderr.
    bash scripts/kafka.sh start >/dev/null
fi
cargo run --quiet --example order_events -- --bootstrap "$bootstrap" "$@"
