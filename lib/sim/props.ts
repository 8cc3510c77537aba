// Property values of datasets, snapshots and bookmarks as `zfs list` and `zfs get` show them.
import {
  datasetWritten,
  poolAvailable,
  referencedAt,
  snapshotUsed,
  snapshotWritten,
  usedByChildren,
  usedByDataset,
  usedBySnapshots,
  writtenBetween,
} from "./accounting.ts";
import { listDate, nicebytes, nicenum } from "./format.ts";
import type { SimBookmark, SimDataset, SimKey, SimSnapshot, SimState } from "./state.ts";
import { poolOf } from "./state.ts";
import { encodeToken } from "./token.ts";

export type Node =
  | { kind: "filesystem" | "volume"; name: string; ds: SimDataset }
  | { kind: "snapshot"; name: string; ds: SimDataset; snap: SimSnapshot }
  | { kind: "bookmark"; name: string; ds: SimDataset; bm: SimBookmark };

export interface PropContext {
  state: SimState;
  used: Map<string, number>;
}

const ALIASES: Record<string, string> = {
  avail: "available",
  refer: "referenced",
  ratio: "compressratio",
  refratio: "refcompressratio",
  lrefer: "logicalreferenced",
  lused: "logicalused",
  compress: "compression",
  rdonly: "readonly",
  reserv: "reservation",
  recsize: "recordsize",
  volblock: "volblocksize",
  usedsnap: "usedbysnapshots",
  usedds: "usedbydataset",
  usedchild: "usedbychildren",
  usedrefreserv: "usedbyrefreservation",
};

/** Column header and alignment of each supported property (zfs_prop_init's colname). */
const COLUMNS: Record<
  string,
  { header: string; kind: "size" | "count" | "string" | "index" | "date" | "ratio" }
> = {
  name: { header: "NAME", kind: "string" },
  type: { header: "TYPE", kind: "index" },
  creation: { header: "CREATION", kind: "date" },
  guid: { header: "GUID", kind: "count" },
  createtxg: { header: "CREATETXG", kind: "count" },
  used: { header: "USED", kind: "size" },
  available: { header: "AVAIL", kind: "size" },
  referenced: { header: "REFER", kind: "size" },
  written: { header: "WRITTEN", kind: "size" },
  compressratio: { header: "RATIO", kind: "ratio" },
  refcompressratio: { header: "REFRATIO", kind: "ratio" },
  mountpoint: { header: "MOUNTPOINT", kind: "string" },
  mounted: { header: "MOUNTED", kind: "index" },
  canmount: { header: "CANMOUNT", kind: "index" },
  readonly: { header: "RDONLY", kind: "index" },
  compression: { header: "COMPRESS", kind: "index" },
  encryption: { header: "ENCRYPTION", kind: "index" },
  keystatus: { header: "KEYSTATUS", kind: "index" },
  encryptionroot: { header: "ENCROOT", kind: "string" },
  keyformat: { header: "KEYFORMAT", kind: "index" },
  keylocation: { header: "KEYLOCATION", kind: "string" },
  pbkdf2iters: { header: "PBKDF2ITERS", kind: "count" },
  receive_resume_token: { header: "RESUMETOK", kind: "string" },
  userrefs: { header: "USERREFS", kind: "count" },
  origin: { header: "ORIGIN", kind: "string" },
  usedbysnapshots: { header: "USEDSNAP", kind: "size" },
  usedbydataset: { header: "USEDDS", kind: "size" },
  usedbychildren: { header: "USEDCHILD", kind: "size" },
  usedbyrefreservation: { header: "USEDREFRESERV", kind: "size" },
  logicalused: { header: "LUSED", kind: "size" },
  logicalreferenced: { header: "LREFER", kind: "size" },
  volsize: { header: "VOLSIZE", kind: "size" },
  quota: { header: "QUOTA", kind: "size" },
  reservation: { header: "RESERV", kind: "size" },
  recordsize: { header: "RECSIZE", kind: "size" },
  defer_destroy: { header: "DEFER_DESTROY", kind: "index" },
  objsetid: { header: "OBJSETID", kind: "count" },
};

/** Canonical property name, or null when zfs would call it invalid. */
export function canonicalProp(name: string): string | null {
  if (/^written[@#][^@#/]+$/.test(name)) return name;
  if (name.includes(":")) return name;
  const canonical = ALIASES[name] ?? name;
  return COLUMNS[canonical] ? canonical : null;
}

export function columnOf(prop: string): {
  header: string;
  rightAlign: boolean;
  width: number;
  fixed: boolean;
} {
  const info = COLUMNS[prop];
  if (!info) {
    const right = prop.startsWith("written");
    return { header: prop.toUpperCase(), rightAlign: right, width: right ? 5 : 0, fixed: right };
  }
  const numeric = info.kind === "size" || info.kind === "count" || info.kind === "ratio";
  const indexWidth: Record<string, number> = {
    type: 10,
    mounted: 3,
    canmount: 6,
    readonly: 3,
    compression: 8,
    encryption: 11,
    keystatus: 11,
    keyformat: 10,
    defer_destroy: 3,
  };
  if (info.kind === "index")
    return { header: info.header, rightAlign: false, width: indexWidth[prop] ?? 0, fixed: true };
  // REFER is 8 wide in real 2.1.11 output (see transcript ex1), the other numbers 5.
  if (numeric)
    return {
      header: info.header,
      rightAlign: true,
      width: prop === "referenced" ? 8 : 5,
      fixed: true,
    };
  return { header: info.header, rightAlign: false, width: 0, fixed: false };
}

/** The wrapping key of an encrypted dataset (its encryption root's), or null. */
export function keyOf(state: SimState, ds: SimDataset): SimKey | null {
  if (!ds.crypt) return null;
  return state.datasets[ds.crypt.root]?.key ?? null;
}

export function tokenOf(ds: SimDataset): string | null {
  const p = ds.partial;
  if (!p) return null;
  return encodeToken({
    ...(p.fromguid !== null ? { fromguid: BigInt(p.fromguid) } : {}),
    object: BigInt(128 + Math.floor(p.received / 131072)),
    offset: BigInt(p.received),
    bytes: BigInt(p.streamBytes),
    toguid: BigInt(p.toguid),
    toname: p.toname,
    ...(p.flags && p.flags.length > 0 ? { flags: p.flags } : {}),
  });
}

function ratioText(ratio: number, parsable: boolean): string {
  return `${ratio.toFixed(2)}${parsable ? "" : "x"}`;
}

interface Value {
  value: string;
  source: string;
}

/** The value of `prop` for `node`; `parsable` gives exact numbers (-p). Null: not applicable. */
export function propValue(ctx: PropContext, node: Node, prop: string, parsable: boolean): Value {
  const ds = node.ds;
  const size = (n: number): string => (parsable ? String(n) : nicebytes(n));
  const count = (n: number): string => (parsable ? String(n) : nicenum(n));
  const stat = (value: string): Value => ({ value, source: "-" });
  const dflt = (value: string): Value => ({ value, source: "default" });
  const isSnap = node.kind === "snapshot";
  const isBookmark = node.kind === "bookmark";
  const isDataset = node.kind === "filesystem" || node.kind === "volume";

  if (prop.startsWith("written@") || prop.startsWith("written#")) {
    if (isBookmark) return stat("-");
    const ref = prop.slice(8);
    const base =
      prop[7] === "@"
        ? ds.snapshots.find((s) => s.name === ref)
        : ds.bookmarks.find((b) => b.name === ref);
    if (!base) return { value: "-", source: "local" };
    if (node.kind === "snapshot") {
      if (node.snap.createtxg <= base.createtxg) return { value: "-", source: "local" };
      return {
        value: size(writtenBetween(ds, base.createtxg, node.snap.createtxg)),
        source: "local",
      };
    }
    return { value: size(writtenBetween(ds, base.createtxg, null)), source: "local" };
  }

  switch (prop) {
    case "name":
      return stat(node.name);
    case "type":
      return stat(node.kind);
    case "creation": {
      const creation = isSnap ? node.snap.creation : isBookmark ? node.bm.creation : ds.creation;
      return stat(parsable ? String(creation) : listDate(creation));
    }
    case "guid":
      return stat(isSnap ? node.snap.guid : isBookmark ? node.bm.guid : ds.guid);
    case "createtxg":
      return stat(
        String(isSnap ? node.snap.createtxg : isBookmark ? node.bm.createtxg : ds.createtxg),
      );
    case "used":
      if (isBookmark) return stat("-");
      return stat(size(isSnap ? snapshotUsed(ds, node.snap) : (ctx.used.get(ds.name) ?? 0)));
    case "available":
      if (!isDataset) return stat("-");
      return stat(size(poolAvailable(ctx.state, poolOf(ds.name), ctx.used)));
    case "referenced":
    case "logicalreferenced": {
      const refer = isSnap
        ? referencedAt(ds, node.snap.createtxg)
        : isBookmark
          ? node.bm.referenced
          : referencedAt(ds, Number.MAX_SAFE_INTEGER);
      return stat(
        size(prop === "logicalreferenced" ? Math.round(refer * ds.compressratio) : refer),
      );
    }
    case "written":
      if (isBookmark) return stat("-");
      return stat(
        parsable
          ? String(isSnap ? snapshotWritten(ds, node.snap) : datasetWritten(ds))
          : nicenum(isSnap ? snapshotWritten(ds, node.snap) : datasetWritten(ds)),
      );
    case "compressratio":
    case "refcompressratio":
      if (isBookmark) return stat("-");
      return stat(ratioText(ds.compressratio, parsable));
    case "mountpoint":
      if (!isDataset || ds.type === "volume") return stat("-");
      return ds.props.mountpoint ? { value: ds.mountpoint, source: "local" } : dflt(ds.mountpoint);
    case "mounted":
      if (!isDataset || ds.type === "volume") return stat("-");
      return stat(ds.mounted ? "yes" : "no");
    case "canmount":
      if (!isDataset || ds.type === "volume") return stat("-");
      return ds.props.canmount ? { value: ds.props.canmount, source: "local" } : dflt("on");
    case "readonly":
      if (!isDataset) return stat("-");
      return dflt("off");
    case "compression":
      if (!isDataset) return stat("-");
      return ds.props.compression ? { value: ds.props.compression, source: "local" } : dflt("off");
    case "encryption":
      if (isBookmark) return stat("-");
      return ds.crypt ? stat(ds.crypt.cipher) : dflt("off");
    case "keystatus": {
      const key = isBookmark ? null : keyOf(ctx.state, ds);
      return stat(key ? (key.loaded ? "available" : "unavailable") : "-");
    }
    case "encryptionroot":
      return stat((!isBookmark && ds.crypt?.root) || "-");
    case "keyformat": {
      if (!isDataset) return stat("-");
      const key = keyOf(ctx.state, ds);
      return key ? stat(key.keyformat) : dflt("none");
    }
    case "keylocation":
      if (!isDataset) return stat("-");
      return ds.key ? { value: ds.key.keylocation, source: "local" } : dflt("none");
    case "pbkdf2iters": {
      if (!isDataset) return stat("-");
      const key = keyOf(ctx.state, ds);
      return key?.keyformat === "passphrase" ? stat(String(key.pbkdf2iters)) : dflt("0");
    }
    case "receive_resume_token":
      return stat((isDataset && tokenOf(ds)) || "-");
    case "userrefs":
      if (!isSnap) return stat("-");
      return stat(count(node.snap.holds.length));
    case "origin":
      return stat("-");
    case "usedbysnapshots":
      return stat(isDataset ? size(usedBySnapshots(ds)) : "-");
    case "usedbydataset":
      return stat(isDataset ? size(usedByDataset(ds)) : "-");
    case "usedbychildren":
      return stat(isDataset ? size(usedByChildren(ctx.state, ds.name, ctx.used)) : "-");
    case "usedbyrefreservation":
      return stat(isDataset ? size(0) : "-");
    case "logicalused":
      return stat(
        isDataset ? size(Math.round((ctx.used.get(ds.name) ?? 0) * ds.compressratio)) : "-",
      );
    case "volsize":
      return stat(ds.type === "volume" && !isBookmark ? size(ds.volsize) : "-");
    case "quota":
    case "reservation":
      return isDataset ? dflt(parsable ? "0" : "none") : stat("-");
    case "recordsize":
      return isDataset && ds.type === "filesystem" ? dflt(size(131072)) : stat("-");
    case "defer_destroy":
      return stat(isSnap ? "off" : "-");
    case "objsetid":
      return stat(String(isSnap ? 128 + node.snap.createtxg : 64 + ds.createtxg));
    default:
      if (prop.includes(":")) {
        const value = ds.props[prop];
        return value === undefined ? stat("-") : { value, source: "local" };
      }
      return stat("-");
  }
}

/** The properties `zfs get all` prints, per type, in the order OpenZFS prints them. */
export function allProps(node: Node): string[] {
  if (node.kind === "snapshot")
    return [
      "type",
      "creation",
      "used",
      "referenced",
      "compressratio",
      "createtxg",
      "guid",
      "defer_destroy",
      "userrefs",
      "objsetid",
      "refcompressratio",
      "written",
      "logicalreferenced",
      "encryption",
      ...(node.ds.crypt ? ["encryptionroot", "keystatus"] : []),
    ];
  if (node.kind === "bookmark")
    return ["type", "creation", "referenced", "createtxg", "guid", "logicalreferenced"];
  const common = ["type", "creation", "used", "available", "referenced", "compressratio"];
  const fs =
    node.kind === "filesystem"
      ? ["mounted", "quota", "reservation", "recordsize", "mountpoint"]
      : ["reservation", "volsize"];
  return [
    ...common,
    ...fs,
    "compression",
    "createtxg",
    "guid",
    "usedbysnapshots",
    "usedbydataset",
    "usedbychildren",
    "usedbyrefreservation",
    "objsetid",
    "refcompressratio",
    "written",
    "logicalused",
    "logicalreferenced",
    "encryption",
    "keylocation",
    "keyformat",
    "pbkdf2iters",
    // zfs get all leaves out what has no value ("-")
    ...(node.ds.crypt ? ["encryptionroot", "keystatus"] : []),
    "receive_resume_token",
  ].filter((p) => !(p === "receive_resume_token" && !node.ds.partial));
}
