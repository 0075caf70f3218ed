#!/usr/bin/env bash
# Generates everything the tests need, at test time: random-weight models (tools/make_test_model)
# and media in every supported container plus the bad inputs (make_media.sh).
# Usage: make_test_data.sh OUT_DIR   (MAKE_TEST_MODEL must name the generator binary)
set -euo pipefail
out="$1"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out/models" "$out/media"

"$MAKE_TEST_MODEL" --preset tiny-test --seed 1 --out "$out/models/tiny-random.bin"
"$here/make_media.sh" "$out/media"
echo "test data ready in $out"
