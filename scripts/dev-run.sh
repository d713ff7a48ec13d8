#!/usr/bin/env bash
# The newcomer's command: installs what is missing, builds, and runs the sidecar on its embedded defaults
# (config/sidecar.dev.yaml): decisions from config/snapshot.example.yaml, usage delivered to a local
# ingest sink (aforo-fake-ingest on 127.0.0.1:8751, recording to /tmp/aforo-dev/ingest.jsonl). No Redis,
# no Aforo account. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build

build_dir=${AFORO_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target aforo-sidecar aforo-fake-ingest

mkdir -p /tmp/aforo-dev
export AFORO_API_KEY=${AFORO_API_KEY:-sk_test_local_dev_key}
"$build_dir/tests/aforo-fake-ingest" --listen 127.0.0.1:8751 --api-key "$AFORO_API_KEY" --tenant tenant_local \
  --record /tmp/aforo-dev/ingest.jsonl 2>/tmp/aforo-dev/ingest.log &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT
echo "local ingest sink on http://127.0.0.1:8751 (events recorded in /tmp/aforo-dev/ingest.jsonl)" >&2
echo "sidecar on http://127.0.0.1:8750 — try: curl http://127.0.0.1:8750/healthz" >&2
"$build_dir/daemon/aforo-sidecar" --config config/sidecar.dev.yaml
