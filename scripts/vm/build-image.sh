#!/usr/bin/env bash
# Builds (or reuses) a Debian 12 + OpenZFS qemu image for abgleich's e2e tests.
# OpenZFS series: 2.1 (2.1.11, Debian 12 contrib) or 2.3 (2.3.x, bookworm-backports contrib).
#
# Outputs in $ABGLEICH_VM_CACHE/<hash>/ (default /var/cache/abgleich-vm):
#   base.img (raw ext4 root, read-only backing file), vmlinuz, initrd.img,
#   id_ed25519 (+ .pub; root's login key), manifest.json.
# <hash> covers this script, every file under guest/ and the series, so editing
# either rebuilds; $ABGLEICH_VM_CACHE/current-<series> points at the newest
# complete image of a series, and current at the 2.1 one (older callers use it).
# The build happens in a temp dir next to the cache entry and is renamed into
# place only when complete, so an interrupted build never looks complete.
#
# Usage: scripts/vm/build-image.sh [--zfs 2.1|2.3] [--print-dir]
#   --zfs: the OpenZFS series (default $ABGLEICH_VM_ZFS, else 2.1)
#   --print-dir: only the image dir on stdout
# Layout, environment and figures: scripts/vm/README.md.
set -Eeuo pipefail
shopt -s inherit_errexit

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
GUEST_DIR="$SCRIPT_DIR/guest"
CACHE_BASE=${ABGLEICH_VM_CACHE:-/var/cache/abgleich-vm}
MIRROR=${ABGLEICH_VM_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
IMAGE_SIZE=6G
PRINT_DIR=0
ZFS_SERIES=${ABGLEICH_VM_ZFS:-2.1}
while (($# > 0)); do
  case "$1" in
  --print-dir) PRINT_DIR=1 ;;
  --zfs)
    ZFS_SERIES=${2:-}
    shift $(($# >= 2 ? 1 : 0))
    ;;
  --zfs=*) ZFS_SERIES=${1#--zfs=} ;;
  *)
    printf '[build-image] error: unknown argument %s (usage: build-image.sh [--zfs 2.1|2.3] [--print-dir])\n' "$1" >&2
    exit 2
    ;;
  esac
  shift
done
trap 'log "failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

log() { printf '[build-image] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

[[ "$(id -u)" == 0 ]] || die "must run as root (debootstrap, chroot and mounts need it)"
[[ "$CACHE_BASE" == /* && "$CACHE_BASE" != / ]] || die "ABGLEICH_VM_CACHE must be an absolute path other than /: '$CACHE_BASE'"
[[ -d "$GUEST_DIR" ]] || die "missing guest files dir: $GUEST_DIR"
case "$ZFS_SERIES" in
2.1) ZFS_APT_TARGET=() ;; # Debian 12 contrib: 2.1.11
2.3) ZFS_APT_TARGET=(-t "$SUITE-backports") ;;
*) die "unknown OpenZFS series '$ZFS_SERIES' (use 2.1 or 2.3)" ;;
esac
# Tools the transfer paths call on a remote end (compression, buffering, rate display).
TRANSFER_TOOLS=(zstd lz4 mbuffer pv lzop)

# Hash of everything the build reads from the repo (names and contents).
image_hash() {
  (
    cd -- "$SCRIPT_DIR"
    find build-image.sh guest -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    printf 'openzfs-series %s\n' "$ZFS_SERIES"
  ) | sha256sum | cut -c1-16
}

HASH=$(image_hash)
FINAL_DIR="$CACHE_BASE/$HASH"

point_link_at_final() { # point_link_at_final NAME: atomic symlink swap
  ln -sfn -- "$HASH" "$CACHE_BASE/.$1.tmp"
  mv -T -- "$CACHE_BASE/.$1.tmp" "$CACHE_BASE/$1"
}

point_current_at_final() {
  point_link_at_final "current-$ZFS_SERIES"
  if [[ $ZFS_SERIES == 2.1 ]]; then point_link_at_final current; fi
}

finish() {
  point_current_at_final
  if [[ $PRINT_DIR == 1 ]]; then printf '%s\n' "$FINAL_DIR"; fi
}

mkdir -p -- "$CACHE_BASE"
# One builder per series at a time; a second caller waits and then finds the image ready.
exec 9>"$CACHE_BASE/.lock-$ZFS_SERIES"
flock 9

if [[ -f "$FINAL_DIR/manifest.json" ]]; then
  log "cache hit: reusing $FINAL_DIR (hash $HASH)"
  finish
  exit 0
fi

# ---------------------------------------------------------------- host tools
apt_retry() {
  # apt may be locked by another process (another helper, unattended jobs): wait and retry.
  local attempt
  for attempt in $(seq 1 30); do
    # stdout to stderr: with --print-dir, stdout carries only the image dir
    if apt-get -o DPkg::Lock::Timeout=60 "$@" >&2; then return 0; fi
    log "apt-get $1 failed (attempt $attempt), retrying in 10 s"
    sleep 10
  done
  die "apt-get $* kept failing"
}

ensure_host_packages() {
  local -A tool_of_package=(
    [qemu-system-x86]=qemu-system-x86_64 [qemu-utils]=qemu-img [debootstrap]=debootstrap
    [e2fsprogs]=mkfs.ext4 [openssh-client]=ssh-keygen [zstd]=zstd
  )
  local missing=() pkg
  for pkg in "${!tool_of_package[@]}"; do
    command -v "${tool_of_package[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then return 0; fi
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_retry update -q
  apt_retry install -y -q --no-install-recommends "${missing[@]}"
}

ensure_host_packages

# ------------------------------------------------------- guarded build root
BUILD_DIR=$(mktemp -d -- "$CACHE_BASE/.build-$HASH.XXXXXX")
ROOT="$BUILD_DIR/root"
BUILD_LOG="$CACHE_BASE/build-$HASH.log" # outside BUILD_DIR so it survives a failed build
: >"$BUILD_LOG"
MOUNTS=()

# Every root-run step that touches $ROOT calls this first: an empty or
# unexpected ROOT must never turn "mount over $ROOT/dev" into "mount over /dev".
guard_root() {
  [[ -n "${ROOT:-}" ]] || die "guard: ROOT is empty"
  [[ "$ROOT" == /* ]] || die "guard: ROOT is not absolute: '$ROOT'"
  [[ "$ROOT" != / ]] || die "guard: ROOT is /"
  [[ "$ROOT" != *..* ]] || die "guard: ROOT contains '..': '$ROOT'"
  [[ "$ROOT" == "$CACHE_BASE"/.build-"$HASH".*/root ]] || die "guard: ROOT is not a build root under $CACHE_BASE: '$ROOT'"
}

mount_in_root() { # mount_in_root TARGET_REL mount-args...
  guard_root
  local target="$ROOT/$1"
  shift
  mkdir -p -- "$target"
  mount "$@" "$target"
  MOUNTS+=("$target")
}

unmount_all() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -- "${MOUNTS[$i]}" 2>/dev/null || umount -l -- "${MOUNTS[$i]}" 2>/dev/null || log "could not unmount ${MOUNTS[$i]}"
  done
  MOUNTS=()
}

cleanup() {
  local status=$?
  unmount_all
  # Only a build dir of ours, and only when nothing is mounted in it any more.
  if [[ -n "${BUILD_DIR:-}" && "$BUILD_DIR" == "$CACHE_BASE"/.build-* && -d "$BUILD_DIR" ]]; then
    if grep -qF -- "$BUILD_DIR" /proc/mounts; then
      log "leaving $BUILD_DIR in place: something is still mounted in it"
    else
      rm -rf --one-file-system -- "$BUILD_DIR"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Pseudo filesystems for the chroot. /dev is a fresh tmpfs with a few nodes,
# not a bind mount of the host's /dev, so nothing done in the chroot reaches it.
mount_chroot_fs() {
  guard_root
  mount_in_root proc -t proc proc
  mount_in_root sys -t sysfs sysfs
  mount_in_root dev -t tmpfs -o mode=0755,size=16M devtmp
  local node
  for node in "null c 1 3" "zero c 1 5" "full c 1 7" "random c 1 8" "urandom c 1 9" "tty c 5 0"; do
    read -r name kind major minor <<<"$node"
    mknod -m 0666 -- "$ROOT/dev/$name" "$kind" "$major" "$minor"
  done
  mount_in_root dev/pts -t devpts -o newinstance,ptmxmode=0666 devpts
  ln -s pts/ptmx "$ROOT/dev/ptmx"
  # bash's <(cmd), used by dkms, needs /dev/fd
  ln -s /proc/self/fd "$ROOT/dev/fd"
  ln -s /proc/self/fd/0 "$ROOT/dev/stdin"
  ln -s /proc/self/fd/1 "$ROOT/dev/stdout"
  ln -s /proc/self/fd/2 "$ROOT/dev/stderr"
  mount_in_root run -t tmpfs -o mode=0755,size=64M runtmp
}

in_root() {
  guard_root
  LC_ALL=C DEBIAN_FRONTEND=noninteractive chroot "$ROOT" "$@"
}

install_guest_files() {
  guard_root
  # cp -a of guest/ keeps modes (mkpool is executable); owner is root either way.
  cp -R --preserve=mode -- "$GUEST_DIR/." "$ROOT/"
  chown -R root:root -- "$ROOT/etc" "$ROOT/usr/local/sbin"
}

START=$(date +%s)

# 1. Base system.
guard_root
log "debootstrap $SUITE into $ROOT"
debootstrap --variant=minbase \
  --include=systemd-sysv,udev,kmod,iproute2,openssh-server,procps,ca-certificates \
  "$SUITE" "$ROOT" "$MIRROR" >>"$BUILD_LOG" 2>&1 ||
  {
    tail -n 30 -- "$BUILD_LOG" >&2
    die "debootstrap failed"
  }
log "debootstrap done after $(($(date +%s) - START)) s"

# 2. Kernel and OpenZFS in the chroot; no service may start (policy-rc.d exit 101).
guard_root
install_guest_files
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 -- "$ROOT/usr/sbin/policy-rc.d"
cp -- /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount_chroot_fs
in_root apt-get update -q >>"$BUILD_LOG" 2>&1 || die "apt-get update in chroot failed (see $BUILD_LOG)"
# The kernel first and on its own: with -t backports in the same command apt would take the
# backports kernel too, and the image is meant to run Debian 12's 6.1.
log "installing kernel and transfer tools"
if ! in_root apt-get install -y -q --no-install-recommends \
  linux-image-amd64 linux-headers-amd64 "${TRANSFER_TOOLS[@]}" >>"$BUILD_LOG" 2>&1; then
  tail -n 40 -- "$BUILD_LOG" >&2
  die "installing the kernel in chroot failed"
fi
if [[ $ZFS_SERIES == 2.3 ]]; then
  printf 'deb %s %s-backports main contrib\n' "http://deb.debian.org/debian" "$SUITE" >"$ROOT/etc/apt/sources.list.d/backports.list"
  in_root apt-get update -q >>"$BUILD_LOG" 2>&1 || die "apt-get update (backports) in chroot failed (see $BUILD_LOG)"
fi
log "installing OpenZFS $ZFS_SERIES (DKMS build: a few minutes)"
if ! in_root apt-get install -y -q --no-install-recommends "${ZFS_APT_TARGET[@]}" \
  zfs-dkms zfsutils-linux >>"$BUILD_LOG" 2>&1; then
  tail -n 40 -- "$BUILD_LOG" >&2
  die "installing OpenZFS $ZFS_SERIES in chroot failed"
fi
log "kernel and OpenZFS installed after $(($(date +%s) - START)) s"

KVER=$(find "$ROOT/lib/modules" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
[[ -n "$KVER" ]] || die "no kernel found under $ROOT/lib/modules"
ZFS_KO="$ROOT/lib/modules/$KVER/updates/dkms/zfs.ko"
[[ -f "$ZFS_KO" ]] || die "DKMS did not build $ZFS_KO"
ZFS_MODULE_VERSION=$(in_root modinfo -F version "/lib/modules/$KVER/updates/dkms/zfs.ko")
ZFS_PACKAGE_VERSION=$(in_root dpkg-query -W -f='${Version}' zfsutils-linux)
[[ "$ZFS_MODULE_VERSION" == "$ZFS_SERIES".* ]] || die "built OpenZFS $ZFS_MODULE_VERSION, expected series $ZFS_SERIES"
[[ $(find "$ROOT/lib/modules" -mindepth 1 -maxdepth 1 -type d | wc -l) == 1 ]] || die "more than one kernel under $ROOT/lib/modules"

# 3. Slim: keep the built modules, drop DKMS, headers and compilers (apt keeps them otherwise).
guard_root
log "slimming the image"
mkdir -p -- "$ROOT/lib/modules/$KVER/extra/zfs"
cp -- "$ROOT/lib/modules/$KVER/updates/dkms/"*.ko "$ROOT/lib/modules/$KVER/extra/zfs/"
BUILD_ONLY=(zfs-dkms dkms linux-headers-amd64 "linux-headers-$KVER" gcc gcc-12 cpp cpp-12 make binutils)
# Simulate first: if zfsutils-linux hard-depends on zfs-dkms, slimming would remove it; then skip.
PURGE_PLAN=$(in_root apt-get -s purge "${BUILD_ONLY[@]}" 2>&1) || die "apt-get -s purge failed: $PURGE_PLAN"
if grep -q '^Purg zfsutils-linux' <<<"$PURGE_PLAN"; then
  log "skipping package slimming: purging DKMS would remove zfsutils-linux"
else
  if ! in_root apt-get purge -y -q "${BUILD_ONLY[@]}" >>"$BUILD_LOG" 2>&1; then
    tail -n 40 -- "$BUILD_LOG" >&2
    die "purging build-only packages failed"
  fi
  in_root apt-get autoremove --purge -y -q >>"$BUILD_LOG" 2>&1 || die "apt-get autoremove failed"
fi
in_root dpkg-query -W zfsutils-linux >/dev/null || die "slimming removed zfsutils-linux"
in_root depmod -a "$KVER"
# -k: without it modinfo looks under the host kernel's version
in_root modinfo -k "$KVER" -F version zfs >/dev/null || die "zfs module not found by modinfo after slimming"
for tool in "${TRANSFER_TOOLS[@]}"; do
  in_root sh -c "command -v $tool" >/dev/null || die "slimming removed $tool"
done

# 4. Boot configuration: small initramfs, networkd, our zfs loader, masked waits.
guard_root
sed -i 's/^MODULES=.*/MODULES=list/' "$ROOT/etc/initramfs-tools/initramfs.conf"
in_root update-initramfs -u -k "$KVER" >>"$BUILD_LOG" 2>&1 || die "update-initramfs failed"
in_root systemctl enable systemd-networkd.service abgleich-zfs-load.service ssh.service >>"$BUILD_LOG" 2>&1
in_root systemctl mask systemd-networkd-wait-online.service zfs-load-module.service \
  zfs-import-cache.service zfs-import-scan.service zfs-zed.service systemd-firstboot.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >>"$BUILD_LOG" 2>&1

# 5. Root's login key, generated here and kept only in the cache.
guard_root
ssh-keygen -q -t ed25519 -N "" -C "abgleich-e2e" -f "$BUILD_DIR/id_ed25519"
chmod 0600 -- "$BUILD_DIR/id_ed25519"
install -d -m 0700 -- "$ROOT/root/.ssh"
install -m 0600 -- "$BUILD_DIR/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"

# 6. Trim caches and docs, leave the chroot, copy kernel and initrd out.
guard_root
in_root apt-get clean
rm -rf -- "$ROOT/var/lib/apt/lists/"* "$ROOT/usr/share/doc/"* "$ROOT/usr/share/man/"* \
  "$ROOT/usr/share/locale/"* "$ROOT/var/cache/debconf/"*-old "$ROOT/usr/src/"*
rm -f -- "$ROOT/usr/sbin/policy-rc.d" "$ROOT/etc/resolv.conf"
unmount_all
cp -- "$ROOT/boot/vmlinuz-$KVER" "$BUILD_DIR/vmlinuz"
cp -- "$ROOT/boot/initrd.img-$KVER" "$BUILD_DIR/initrd.img"

# 7. The root filesystem image (no loop device needed).
guard_root
truncate -s "$IMAGE_SIZE" -- "$BUILD_DIR/base.img"
mkfs.ext4 -q -F -L abgleich-root -d "$ROOT" "$BUILD_DIR/base.img"
chmod 0444 -- "$BUILD_DIR/base.img" # backing file of every VM overlay: never written
rm -rf --one-file-system -- "$ROOT"

BUILD_SECONDS=$(($(date +%s) - START))
printf '{\n  "hash": "%s",\n  "debian": "%s",\n  "kernel": "%s",\n  "openzfsSeries": "%s",\n  "openzfs": "%s",\n  "zfsutilsPackage": "%s",\n  "builtAt": "%s",\n  "buildSeconds": %d\n}\n' \
  "$HASH" "$SUITE" "$KVER" "$ZFS_SERIES" "$ZFS_MODULE_VERSION" "$ZFS_PACKAGE_VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$BUILD_SECONDS" \
  >"$BUILD_DIR/manifest.json"

# 8. Publish atomically.
rm -rf --one-file-system -- "$FINAL_DIR" # a leftover without manifest is incomplete
mv -T -- "$BUILD_DIR" "$FINAL_DIR"
BUILD_DIR=""
log "built $FINAL_DIR in $BUILD_SECONDS s (OpenZFS $ZFS_MODULE_VERSION, kernel $KVER)"
finish
