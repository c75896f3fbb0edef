#!/usr/bin/env bash
# The README's first command: starts a local Kafka broker when none is running, then runs
# the main example against it. The broker keeps running afterwards; stop it with
# `scripts/kafka.sh stop`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bootstrap="${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
    # Idempotent: does nothing when the single node already runs.
    bash scripts/kafka.sh start >/dev/null
fi
KAFKA_BOOTSTRAP="$bootstrap" cargo run --quiet --example cluster_info -- "$bootstrap" "$@"
