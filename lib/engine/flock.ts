// flock(2) through libc (bun:ffi: node:fs has no flock). The kernel drops such a lock when the
// process dies, however it dies, so nobody ever has to judge a lock stale. Used by the run locks
// (./lock.ts) and the simulator's state lock. Null from loadLibc where no libc loads.

import { dlopen, FFIType, type Pointer, read } from "bun:ffi";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EINTR = 4;

export interface Libc {
  flock(fd: number, operation: number): number;
  errno(): number;
  ewouldblock: number;
}

/** per platform, the names dlopen may know libc by; the first that loads wins */
const LIBC_NAMES: Partial<Record<NodeJS.Platform, string[]>> = {
  linux: ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"],
  darwin: ["/usr/lib/libSystem.B.dylib", "libc.dylib"],
  freebsd: ["libc.so.7"],
  openbsd: ["libc.so"],
};
/** glibc and musl call errno's address __errno_location; macOS and the BSDs __error */
const ERRNO_SYMBOLS = ["__errno_location", "__error"];

let libc: Libc | null | undefined;

export function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  for (const name of LIBC_NAMES[process.platform] ?? []) {
    for (const errnoSymbol of ERRNO_SYMBOLS) {
      try {
        const lib = dlopen(name, {
          flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
          [errnoSymbol]: { args: [], returns: FFIType.ptr },
        });
        const errnoAddress = lib.symbols[errnoSymbol] as () => Pointer | null;
        libc = {
          flock: (fd, operation) => lib.symbols.flock(fd, operation),
          errno: () => {
            const address = errnoAddress();
            return address === null ? -1 : read.i32(address, 0);
          },
          ewouldblock: process.platform === "linux" ? 11 : 35,
        };
        return libc;
      } catch {
        // not this name or not this symbol: try the next
      }
    }
  }
  return libc;
}

/** true: locked; false: someone else holds it */
export function tryFlock(lib: Libc, fd: number, path: string): boolean {
  for (;;) {
    if (lib.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const errno = lib.errno();
    if (errno === lib.ewouldblock) return false;
    if (errno !== EINTR) throw new Error(`cannot lock ${path}: flock failed with errno ${errno}`);
  }
}

/** drops a lock taken with tryFlock, keeping the file open */
export function unflock(lib: Libc, fd: number): void {
  lib.flock(fd, LOCK_UN);
}
