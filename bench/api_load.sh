#!/usr/bin/env bash
# The async jobs API under load, judged against issue 7's target: p99 of GET /v1/jobs/{id} under
# 10 ms with 200 concurrent clients for 60 s against the CPU server and the tiny generated model
# (no 5xx but 503 queue_full, no job lost). The same script as the e2e.load_jobs test, which
# asserts a looser 50 ms so that a slow CI machine does not fail it; this prints the figures and
# exits non-zero when the target is missed.
#
#   bench/api_load.sh [EXTRA load_jobs.mjs FLAGS]   e.g. --clients 400 --seconds 120
# Environment: BUILD (build dir, default build), P99_MS (target, default 10).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BUILD="${BUILD:-build}"
data="$BUILD/test-data"
if [ ! -f "$data/media/speech.wav" ] || [ ! -f "$data/models/tiny-random.bin" ]; then
  MAKE_TEST_MODEL="$BUILD/make_test_model" "$here/../tests/support/make_test_data.sh" "$data" >/dev/null
fi
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
STENO_BIN="$BUILD/steno" STENO_TEST_DATA="$data" GGML_NO_BACKTRACE=1 \
  exec node "$here/../tests/e2e/load_jobs.mjs" --clients 200 --seconds 60 \
  --p99-limit-ms "${P99_MS:-10}" "$@"
