#!/usr/bin/env bash
# CI step for the real-OpenZFS e2e suite: for each OpenZFS series (2.1 first, then 2.3) build or
# reuse its VM image, run `bun test tests/e2e` against it and print its pass/fail counts and
# timings; the last line sums them up. Fails when any series fails (tests or image build).
# Usage: bash scripts/vm/ci-e2e.sh [extra bun test args...]
# Env: ABGLEICH_E2E_ZFS=2.1|2.3|all (default all) picks the series; ABGLEICH_E2E_LOG_DIR.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd -- "$REPO"
LOG_DIR=${ABGLEICH_E2E_LOG_DIR:-$REPO/.tmp}
mkdir -p -- "$LOG_DIR"

case "${ABGLEICH_E2E_ZFS:-all}" in
all) SERIES=(2.1 2.3) ;;
2.1 | 2.3) SERIES=("$ABGLEICH_E2E_ZFS") ;;
*)
  echo "[ci-e2e] ABGLEICH_E2E_ZFS must be 2.1, 2.3 or all, not '$ABGLEICH_E2E_ZFS'" >&2
  exit 2
  ;;
esac

# bun prints " N pass", " N fail" and (for errors between tests) " N error(s)" summary lines.
count() { grep -aE "^ *[0-9]+ $1s?\$" "$2" | tail -n 1 | tr -dc '0-9' || true; }

total_passed=0
total_failed=0
overall=0
summary=()
run_start=$(date +%s)

for series in "${SERIES[@]}"; do
  test_log="$LOG_DIR/e2e-test-$series.log"
  : >"$test_log"
  step_start=$(date +%s)
  if ! image_dir=$(bash scripts/vm/build-image.sh --zfs "$series" --print-dir); then
    image_seconds=$(($(date +%s) - step_start))
    line="[ci-e2e] OpenZFS $series: image build failed after ${image_seconds} s (log under /var/cache/abgleich-vm)"
    echo "$line"
    summary+=("$line")
    total_failed=$((total_failed + 1))
    overall=1
    continue
  fi
  image_seconds=$(($(date +%s) - step_start))
  version=$(sed -n 's/^ *"openzfs": "\([^"]*\)".*/\1/p' "$image_dir/manifest.json")
  echo "[ci-e2e] OpenZFS $series: image $image_dir ($version, ready after ${image_seconds} s)"

  test_start=$(date +%s)
  set +e
  ABGLEICH_VM_DIR="$image_dir" node_modules/.bin/bun test --timeout 60000 tests/e2e "$@" 2>&1 | tee "$test_log"
  status=${PIPESTATUS[0]}
  set -e
  test_seconds=$(($(date +%s) - test_start))

  passed=$(count pass "$test_log")
  failed=$(($(count fail "$test_log") + $(count error "$test_log") + 0))
  # a crash or load error without a failed test must still count as a failure
  if [[ $status != 0 && $failed == 0 ]]; then failed=1; fi
  if [[ $status == 0 ]]; then verdict=pass; else verdict=FAIL; fi
  line="[ci-e2e] OpenZFS $series ($version): $verdict, ${passed:-0} passed, $failed failed, exit $status, ${test_seconds} s (image step ${image_seconds} s)"
  echo "$line"
  summary+=("$line")
  total_passed=$((total_passed + ${passed:-0}))
  total_failed=$((total_failed + failed))
  if [[ $status != 0 ]]; then overall=1; fi
done

printf '%s\n' "${summary[@]}"
# .ci/run reads this last line's counts.
echo "[ci-e2e] e2e: $total_passed passed, $total_failed failed, exit $overall, $(($(date +%s) - run_start)) s (OpenZFS ${SERIES[*]})"
exit "$overall"
