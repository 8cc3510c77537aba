#!/usr/bin/env bash
# CI step for the real-OpenZFS e2e suite: build or reuse the VM image, then run
# `bun test tests/e2e` against it and print its pass/fail counts and timings.
# Usage: bash scripts/vm/ci-e2e.sh [extra bun test args...]
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd -- "$REPO"
LOG_DIR=${ABGLEICH_E2E_LOG_DIR:-$REPO/.tmp}
mkdir -p -- "$LOG_DIR"
TEST_LOG="$LOG_DIR/e2e-test.log"

step_start=$(date +%s)
IMAGE_DIR=$(bash scripts/vm/build-image.sh --print-dir)
image_seconds=$(($(date +%s) - step_start))
echo "[ci-e2e] image: $IMAGE_DIR (ready after ${image_seconds} s)"
export ABGLEICH_VM_DIR="$IMAGE_DIR"

test_start=$(date +%s)
set +e
node_modules/.bin/bun test tests/e2e "$@" 2>&1 | tee "$TEST_LOG"
status=${PIPESTATUS[0]}
set -e
test_seconds=$(($(date +%s) - test_start))

# bun prints " N pass", " N fail" and (for errors between tests) " N error" summary lines.
count() { grep -E "^ *[0-9]+ $1\$" "$TEST_LOG" | tail -n 1 | tr -dc '0-9' || true; }
passed=$(count pass)
failed=$(($(count fail) + $(count error) + 0))
echo "[ci-e2e] e2e: ${passed:-0} passed, ${failed:-0} failed, exit $status, ${test_seconds} s (image step ${image_seconds} s)"
exit "$status"
