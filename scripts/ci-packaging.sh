#!/usr/bin/env bash
# CI's packaging step (.ci/run): build the release, install the .deb on this machine and use it
# (version, man page, completions, the units as installed, status on the simulator), install
# the npm tarball into a temporary prefix, run the arm64 binary under qemu-user; then remove
# the .deb again. Needs root (dpkg). Ends with one line:
#   [ci-packaging] packaging: N passed, M failed
set -uo pipefail

cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

passed=0
failed=0
log() { echo "[ci-packaging] $*"; }
check() { # check NAME COMMAND...: one counted result
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    log "ok: $name"
  else
    failed=$((failed + 1))
    log "FAILED: $name"
  fi
}
finish() {
  log "packaging: ${passed} passed, ${failed} failed"
  [ "$failed" -eq 0 ]
  exit
}

version=$(node -p 'require("./package.json").version')
work=$(mktemp -d)
# The demos lock their simulated pools (tank/data) in a folder of their own: as root they would
# otherwise share /run/lock/abgleich with every other run on this machine, and refuse while one
# of them holds localhost:tank/data.
mkdir -p "$work/locks" "$work/arm-locks"
installed=0
binfmt=""
arm_demo=""
cleanup() {
  # the machine stays as it was: no abgleich package, no binfmt handler of ours
  if [ "$installed" = 1 ]; then
    apt-get remove -y -q -o DPkg::Lock::Timeout=300 abgleich >/dev/null 2>&1 || dpkg -r abgleich >/dev/null
  fi
  if [ -n "$arm_demo" ]; then kill "$arm_demo" 2>/dev/null && wait "$arm_demo" 2>/dev/null; fi
  [ -n "$binfmt" ] && echo -1 >"/proc/sys/fs/binfmt_misc/$binfmt" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "$@" >/dev/null
}
missing=()
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing+=(libc6-arm64-cross)
command -v readelf >/dev/null || missing+=(binutils)
command -v man >/dev/null || missing+=(man-db)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null
  apt_install "${missing[@]}" || log "could not install ${missing[*]}"
fi

log "npm run release"
if ! npm run --silent release; then
  failed=$((failed + 1))
  log "FAILED: npm run release"
  finish
fi
deb="dist/abgleich_${version}_amd64.deb"
check "SHA256SUMS lists and matches every artifact" \
  bash -c 'cd dist && [ "$(wc -l <SHA256SUMS)" -eq 4 ] && sha256sum --quiet -c SHA256SUMS'

# --- the arm64 binary under qemu-user (its demo runs in the background meanwhile) ---
arm="dist/abgleich-linux-arm64"
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
check "arm64 binary --version (qemu-aarch64)" \
  test "$(qemu-aarch64 -L "$QEMU_LD_PREFIX" "$arm" --version)" = "$version"
# The demo runs the simulator as a child (the binary itself), so the kernel must start arm64
# programs through qemu: a binfmt_misc handler, registered for this step only.
register_binfmt() {
  local name=abgleich-ci-aarch64 misc=/proc/sys/fs/binfmt_misc
  [ -e "$misc/register" ] || mount -t binfmt_misc binfmt_misc "$misc" 2>/dev/null || return 1
  if grep -qs "magic 7f454c460201010000000000000000000200b700" "$misc"/*; then return 0; fi
  echo ":$name:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:$(command -v qemu-aarch64):" \
    >"$misc/register" || return 1
  binfmt=$name
}
if register_binfmt; then
  # JIT off: under qemu, JavaScriptCore's interpreter starts about twice as fast
  TMPDIR="$work" ABGLEICH_LOCK_DIR="$work/arm-locks" NO_COLOR=1 BUN_JSC_useJIT=0 timeout 1200 "$arm" demo >"$work/arm-demo.log" 2>&1 &
  arm_demo=$!
fi
arm_demo_ok() {
  [ -n "$arm_demo" ] || {
    echo "no binfmt_misc to run the demo's arm64 children through qemu"
    return 1
  }
  wait "$arm_demo" && grep -q "Demo complete" "$work/arm-demo.log" || {
    tail -n 20 "$work/arm-demo.log"
    return 1
  }
}

# --- the .deb, installed ---
log "installing $deb"
if apt_install "./$deb"; then
  installed=1
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  log "FAILED: install $deb"
  finish
fi

check "abgleich --version is $version" test "$(/usr/bin/abgleich --version)" = "$version"
check "man -w abgleich" test "$(man -w abgleich)" = /usr/share/man/man1/abgleich.1.gz
check "man abgleich renders" bash -c 'MANWIDTH=80 man abgleich 2>/dev/null | grep -q "^COMMANDS"'
check "bash completion: abgleich ba → backup" bash -c \
  'source /usr/share/bash-completion/completions/abgleich; COMP_WORDS=(abgleich ba); COMP_CWORD=1; _abgleich; [ "${COMPREPLY[*]}" = backup ]'
if command -v fish >/dev/null; then
  fish_ok() { # fish finds it in vendor_completions.d by itself (a fresh HOME: no user config)
    mkdir -p "$work/fish-home"
    HOME="$work/fish-home" fish -c 'complete -C "abgleich ba"' | grep -q '^backup'
  }
  check "fish completion from vendor_completions.d" fish_ok
fi
if command -v zsh >/dev/null; then
  check "zsh completion is valid zsh" zsh -n /usr/share/zsh/vendor-completions/_abgleich
fi
# as installed, with their real ExecStart (verify needs /usr/bin/abgleich to exist)
check "systemd-analyze verify on the installed units" bash -c \
  'out=$(systemd-analyze verify --man=no /usr/lib/systemd/system/abgleich@.service /usr/lib/systemd/system/abgleich@.timer /usr/lib/systemd/system/abgleich-status@.service /usr/lib/systemd/system/abgleich-status@.timer 2>&1) && [ -z "$out" ] || { echo "$out"; false; }'

# status on the simulator: the demo's pools, kept, then asked about by the installed binary
demo_ok() {
  TMPDIR="$work" ABGLEICH_LOCK_DIR="$work/locks" NO_COLOR=1 /usr/bin/abgleich demo --keep >"$work/demo.log" 2>&1 || {
    tail -n 20 "$work/demo.log"
    return 1
  }
}
check "abgleich demo (installed binary)" demo_ok
demo_dir=$(find "$work" -maxdepth 1 -name 'abgleich-demo-*' -type d | head -n 1)
status_ok() {
  [ -n "$demo_dir" ] || return 1
  local out code
  out=$(PATH="$demo_dir/bin:$PATH" ABGLEICH_STATE_DIR="$demo_dir/run-state" NO_COLOR=1 \
    /usr/bin/abgleich status "$demo_dir/demo.yaml" --prometheus "$work/abgleich.prom" 2>&1)
  code=$?
  echo "$out" | head -n 3
  [ "$code" -eq 0 ] && [ -s "$work/abgleich.prom" ]
}
check "abgleich status on the simulator: OK, textfile written" status_ok

# --- npm: the tarball installs a working command with only node and npm ---
npm_ok() {
  (cd "$work" && npm pack "$OLDPWD" --silent >/dev/null) &&
    npm i -g "$work/abgleich-$version.tgz" --prefix "$work/npm" --no-audit --no-fund --silent &&
    test "$(env PATH=/usr/bin:/bin "$work/npm/bin/abgleich" --version)" = "$version"
}
check "npm pack + npm i -g: abgleich --version without bun on PATH" npm_ok

check "arm64 binary: abgleich demo (qemu-aarch64)" arm_demo_ok

finish
