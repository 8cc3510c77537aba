// The differential check: ONE scripted zfs history, replayed against the simulator (lib/sim
// through its `zfs` shim) and against real OpenZFS in a VM; both runs are normalized (guids to
// first-seen ids, tokens and sizes to presence) and compared step by step.

import { shellJoin, shellQuote } from "../../lib/hosts/quote.ts";
import { zfsBookmarkProgram } from "../../lib/zfs/commands.ts";

export type Step =
  /** one zfs command */
  | {
      label: string;
      zfs: string[];
      /** compare: as printed; shape: digits dropped; bookmark-twins: see normalize */
      stdout?: "compare" | "sorted-lines" | "shape" | "bookmark-twins";
      /** sorted-lines: messages whose order zfs does not fix (an nvlist of errors) */
      stderr?: "sorted-lines";
    }
  /** BYTES of new data in a file below the dataset's mountpoint (sim: sim-write) */
  | { label: string; write: { dataset: string; file: string; bytes: number } }
  /** `zfs send SEND | [head -c CUT |] zfs receive RECEIVE`; the result is the receive's */
  | { label: string; send: string[]; receive: string[]; cut?: number }
  /** resume the dataset's saved receive with `zfs send -t TOKEN`, receive options after `-s -u` */
  | { label: string; resume: string; options?: string[] }
  /** `zfs list -t all -Hp -o LIST_COLUMNS -r POOL`, normalized */
  | { label: string; list: string }
  /**
   * `zfs send SEND` into a file, then `zfs receive RECEIVE` from it in the background, its
   * input stalled after STALL bytes (the receive has read most of them: it is in flight)
   * until the `finish` step of the same name; the step ends once the stall is reached
   */
  | { label: string; inFlight: { name: string; send: string[]; receive: string[]; stall: number } }
  /** lets the in-flight receive NAME read the rest of its stream; the result is its own */
  | { label: string; finish: string }
  /** a shell command line run as it is on both sides (files the next steps read) */
  | { label: string; sh: string }
  /** `zfs send -nv -t TOKEN` of the dataset's saved receive: the names in the token compared */
  | { label: string; tokenOf: string };

export const LIST_COLUMNS = ["name", "type", "guid", "receive_resume_token", "userrefs", "written"];

const P = "diffpool";
const MiB = 1024 * 1024;
/** bytes an in-flight receive gets before its input stalls (streams are 2 MiB and more) */
const STALL = 1_000_000;
/** key files of the encryption steps: the same path in the VM and beside the simulator */
const KEY = "/tmp/abgleich-differential.key";
const WRONG_KEY = "/tmp/abgleich-differential-wrong.key";
const SHORT_KEY = "/tmp/abgleich-differential-short.key";
const CRYPT_COLUMNS = "name,encryption,keystatus,encryptionroot,keyformat,keylocation,pbkdf2iters";
/** `zfs list` of the crypt properties below ROOT, compared as printed */
const cryptList = (label: string, root: string): Step => ({
  label,
  zfs: ["list", "-t", "all", "-Hp", "-o", CRYPT_COLUMNS, "-r", root],
  stdout: "compare",
});

/** the scripted history: the commands abgleich runs, and the error cases of the transcripts */
export const HISTORY: Step[] = [
  { label: "create src", zfs: ["create", `${P}/src`] },
  { label: "create child", zfs: ["create", `${P}/src/child`] },
  { label: "create: already exists", zfs: ["create", `${P}/src/child`] },
  { label: "create -p: already exists (silently done)", zfs: ["create", "-p", `${P}/src/child`] },
  { label: "write f1", write: { dataset: `${P}/src`, file: "f1", bytes: 2 * MiB } },
  { label: "write c1", write: { dataset: `${P}/src/child`, file: "c1", bytes: 100_000 } },
  { label: "snapshot -r s1", zfs: ["snapshot", "-r", `${P}/src@s1`] },
  { label: "write f2", write: { dataset: `${P}/src`, file: "f2", bytes: MiB } },
  { label: "snapshot s2", zfs: ["snapshot", `${P}/src@s2`, `${P}/src/child@s2`] },
  { label: "list after snapshots", list: P },
  { label: "diff s1 s2", zfs: ["diff", `${P}/src@s1`, `${P}/src@s2`], stdout: "sorted-lines" },
  { label: "diff s2 (nothing since)", zfs: ["diff", `${P}/src@s2`], stdout: "sorted-lines" },
  { label: "snapshot exists", zfs: ["snapshot", `${P}/src@s1`] },
  {
    label: "full send",
    send: ["send", `${P}/src@s1`],
    receive: ["receive", "-s", "-u", `${P}/dst`],
  },
  {
    label: "incremental -I",
    send: ["send", "-I", "@s1", `${P}/src@s2`],
    receive: ["receive", "-s", "-u", `${P}/dst`],
  },
  {
    label: "incremental onto a missing dataset",
    send: ["send", "-i", "@s1", `${P}/src@s2`],
    receive: ["receive", "-s", "-u", `${P}/other`],
  },
  {
    label: "full send onto an existing dataset",
    send: ["send", `${P}/src@s1`],
    receive: ["receive", "-s", "-u", `${P}/dst`],
  },
  { label: "list after sends", list: P },
  { label: "write f3", write: { dataset: `${P}/src`, file: "f3", bytes: 3 * MiB } },
  { label: "snapshot s3", zfs: ["snapshot", `${P}/src@s3`] },
  {
    label: "cut incremental",
    send: ["send", "-i", "@s2", `${P}/src@s3`],
    receive: ["receive", "-s", "-u", `${P}/dst`],
    cut: 1_000_000,
  },
  { label: "list with token", list: P },
  { label: "resume", resume: `${P}/dst` },
  { label: "list after resume", list: P },
  { label: "write f4", write: { dataset: `${P}/src`, file: "f4", bytes: 2 * MiB } },
  { label: "snapshot s4", zfs: ["snapshot", `${P}/src@s4`] },
  {
    label: "cut again",
    send: ["send", "-i", "@s3", `${P}/src@s4`],
    receive: ["receive", "-s", "-u", `${P}/dst`],
    cut: 500_000,
  },
  { label: "abort resume", zfs: ["receive", "-A", `${P}/dst`] },
  { label: "abort without state", zfs: ["receive", "-A", `${P}/dst`] },
  { label: "list after abort", list: P },
  { label: "mount dst", zfs: ["mount", `${P}/dst`] },
  { label: "modify target", write: { dataset: `${P}/dst`, file: "local", bytes: 200_000 } },
  {
    label: "incremental onto a modified target",
    send: ["send", "-i", "@s3", `${P}/src@s4`],
    receive: ["receive", "-s", "-u", `${P}/dst`],
  },
  { label: "hold s1", zfs: ["hold", "keep", `${P}/src@s1`] },
  { label: "destroy held", zfs: ["destroy", `${P}/src@s1`] },
  { label: "list with hold", list: P },
  { label: "release s1", zfs: ["release", "keep", `${P}/src@s1`] },
  { label: "destroy list", zfs: ["destroy", `${P}/src@s1,s2`] },
  { label: "destroy missing snapshot", zfs: ["destroy", `${P}/src@nope`] },
  { label: "list missing dataset", zfs: ["list", `${P}/missing`] },
  { label: "send missing snapshot", zfs: ["send", `${P}/src@nope`] },
  {
    label: "send estimate",
    zfs: ["send", "-nvP", "-I", "@s3", `${P}/src@s4`],
    stdout: "shape",
  },
  { label: "hold s4", zfs: ["hold", "mine", `${P}/src@s4`] },
  { label: "holds -H", zfs: ["holds", "-H", `${P}/src@s4`], stdout: "shape" },
  { label: "holds -Hp (no -p in 2.1)", zfs: ["holds", "-Hp", `${P}/src@s4`] },
  { label: "release s4", zfs: ["release", "mine", `${P}/src@s4`] },
  { label: "bookmark", zfs: ["bookmark", `${P}/src@s4`, `${P}/src#b4`] },
  { label: "bad resume token", zfs: ["send", "-t", "1-bogus"] },
  { label: "create odd name", zfs: ["create", `${P}/a b:c.d-e`] },
  { label: "snapshot odd name", zfs: ["snapshot", `${P}/a b:c.d-e@x:y.z-1`] },
  { label: "bad snapshot name", zfs: ["snapshot", `${P}/src@bad/name`] },
  { label: "create volume", zfs: ["create", "-V", "4M", `${P}/vol`] },
  // a second receive of what the target already has: refused for a full stream; for an
  // incremental zfs skips it — unless it is empty (BEGIN, END): the kernel read its END, so
  // the skip runs on through the next snapshot of a -I package, or past the stream's end
  { label: "create re", zfs: ["create", `${P}/re`] },
  { label: "write r1", write: { dataset: `${P}/re`, file: "r1", bytes: MiB } },
  { label: "snapshot re@a", zfs: ["snapshot", `${P}/re@a`] },
  { label: "snapshot re@b (nothing changed)", zfs: ["snapshot", `${P}/re@b`] },
  { label: "write r2", write: { dataset: `${P}/re`, file: "r2", bytes: 2 * MiB } },
  { label: "snapshot re@c", zfs: ["snapshot", `${P}/re@c`] },
  { label: "snapshot re@d (nothing changed)", zfs: ["snapshot", `${P}/re@d`] },
  { label: "write r3", write: { dataset: `${P}/re`, file: "r3", bytes: 2 * MiB } },
  { label: "snapshot re@e", zfs: ["snapshot", `${P}/re@e`] },
  ...receives("full re@a", ["send", `${P}/re@a`], `${P}/re1`),
  ...receives("full re@a again", ["send", `${P}/re@a`], `${P}/re1`),
  ...receives("full re@a again onto the snapshot", ["send", `${P}/re@a`], `${P}/re1@a`),
  ...receives("-I a..c", ["send", "-I", "@a", `${P}/re@c`], `${P}/re1`),
  ...receives("-i b..c again (data)", ["send", "-i", "@b", `${P}/re@c`], `${P}/re1`),
  ...receives("-i a..b again (empty)", ["send", "-i", "@a", `${P}/re@b`], `${P}/re1`),
  ...receives("-I a..c again (b swallows c)", ["send", "-I", "@a", `${P}/re@c`], `${P}/re1`),
  ...receives("-I a..b again (ends empty)", ["send", "-I", "@a", `${P}/re@b`], `${P}/re1`),
  ...receives("full re@a into re2", ["send", `${P}/re@a`], `${P}/re2`),
  ...receives("-i a..b into re2", ["send", "-i", "@a", `${P}/re@b`], `${P}/re2`),
  ...receives("-I a..d (b swallows c, d refused)", ["send", "-I", "@a", `${P}/re@d`], `${P}/re2`),
  { label: "snapshot re2@c locally", zfs: ["snapshot", `${P}/re2@c`] },
  ...receives("-i b..c onto another re2@c", ["send", "-i", "@b", `${P}/re@c`], `${P}/re2`),
  { label: "list after second receives", list: P },
  // a second receive while the first into the same target is in flight
  {
    label: "in flight: full -s into fl",
    inFlight: {
      name: "f1",
      send: ["send", `${P}/re@c`],
      receive: ["receive", "-s", "-u", `${P}/fl`],
      stall: STALL,
    },
  },
  { label: "list with a full receive in flight", list: P },
  ...receives("in flight: full again", ["send", `${P}/re@c`], `${P}/fl`),
  ...receives("in flight: full -F", ["send", `${P}/re@c`], `${P}/fl`, ["-F"]),
  { label: "in flight: resume its token", resume: `${P}/fl` },
  ...receives("in flight: incremental", ["send", "-i", "@c", `${P}/re@e`], `${P}/fl`),
  { label: "in flight: abort", zfs: ["receive", "-A", `${P}/fl`] },
  { label: "finish the full receive", finish: "f1" },
  {
    label: "in flight: incremental -s into fl",
    inFlight: {
      name: "f2",
      send: ["send", "-i", "@c", `${P}/re@e`],
      receive: ["receive", "-s", "-u", `${P}/fl`],
      stall: STALL,
    },
  },
  { label: "list with an incremental in flight", list: P },
  ...receives("in flight: incremental again", ["send", "-i", "@c", `${P}/re@e`], `${P}/fl`),
  {
    label: "in flight: incremental again without -s",
    send: ["send", "-i", "@c", `${P}/re@e`],
    receive: ["receive", "-u", `${P}/fl`],
  },
  ...receives("in flight: full onto it", ["send", `${P}/re@c`], `${P}/fl`),
  { label: "in flight: resume its token (incremental)", resume: `${P}/fl` },
  { label: "in flight: abort (incremental)", zfs: ["receive", "-A", `${P}/fl`] },
  { label: "finish the incremental", finish: "f2" },
  {
    label: "in flight without -s: full into fl2",
    inFlight: {
      name: "f3",
      send: ["send", `${P}/re@c`],
      receive: ["receive", "-u", `${P}/fl2`],
      stall: STALL,
    },
  },
  { label: "list with a full receive without -s in flight", list: P },
  ...receives("in flight without -s: full again", ["send", `${P}/re@c`], `${P}/fl2`),
  ...receives("in flight without -s: incremental", ["send", "-i", "@c", `${P}/re@e`], `${P}/fl2`),
  { label: "in flight without -s: abort", zfs: ["receive", "-A", `${P}/fl2`] },
  { label: "finish the full receive without -s", finish: "f3" },
  {
    label: "in flight without -s: incremental into fl2",
    inFlight: {
      name: "f4",
      send: ["send", "-i", "@c", `${P}/re@e`],
      receive: ["receive", "-u", `${P}/fl2`],
      stall: STALL,
    },
  },
  ...receives(
    "in flight without -s: incremental again",
    ["send", "-i", "@c", `${P}/re@e`],
    `${P}/fl2`,
  ),
  { label: "in flight without -s: abort (incremental)", zfs: ["receive", "-A", `${P}/fl2`] },
  { label: "finish the incremental without -s", finish: "f4" },
  {
    label: "cut full into part",
    send: ["send", `${P}/re@c`],
    receive: ["receive", "-s", "-u", `${P}/part`],
    cut: STALL,
  },
  ...receives("full onto a cut full", ["send", `${P}/re@c`], `${P}/part`),
  ...receives("full -F onto a cut full", ["send", `${P}/re@c`], `${P}/part`, ["-F"]),
  { label: "list after in-flight receives", list: P },
  ...ENCRYPTION(),
  ...HOLDS(),
  ...BOOKMARKS(),
  ...SEND_FLAGS(),
  { label: "final list", list: P },
  // last: its `mount -a` mounts what it may of the whole pool
  ...CANMOUNT(),
];

/** abgleich's first receive of a filesystem sets canmount=noauto: `mount -a` leaves it alone */
function CANMOUNT(): Step[] {
  const props = (label: string, dataset: string, columns = "canmount,mounted"): Step => ({
    label,
    zfs: ["get", "-H", "-o", "name,property,value,source", columns, dataset],
    stdout: "compare",
  });
  const noauto = ["-o", "canmount=noauto"];
  return [
    {
      label: "full with -o canmount=noauto",
      send: ["send", `${P}/re@c`],
      receive: ["receive", "-s", "-u", ...noauto, `${P}/cm`],
    },
    props("canmount after the full", `${P}/cm`),
    {
      label: "incremental without -o",
      send: ["send", "-i", "@c", `${P}/re@e`],
      receive: ["receive", "-s", "-u", `${P}/cm`],
    },
    props("canmount kept by the incremental", `${P}/cm`),
    {
      label: "cut full with -o canmount=noauto",
      send: ["send", `${P}/re@c`],
      receive: ["receive", "-s", "-u", ...noauto, `${P}/cmcut`],
      cut: STALL,
    },
    props("canmount of the partial receive", `${P}/cmcut`, "canmount"),
    { label: "resume without -o", resume: `${P}/cmcut` },
    props("canmount after the resume", `${P}/cmcut`),
    {
      label: "cut full without -o",
      send: ["send", `${P}/re@c`],
      receive: ["receive", "-s", "-u", `${P}/cmcut2`],
      cut: STALL,
    },
    props("canmount of a partial receive without -o", `${P}/cmcut2`, "canmount"),
    { label: "resume with -o canmount=noauto", resume: `${P}/cmcut2`, options: noauto },
    props("canmount set by the resume", `${P}/cmcut2`),
    {
      label: "raw full with -o canmount=noauto",
      send: ["send", "-w", `${P}/enc@e1`],
      receive: ["receive", "-s", "-u", ...noauto, `${P}/cmraw`],
    },
    props("canmount of the raw receive", `${P}/cmraw`, "canmount,mounted,keystatus"),
    { label: "snapshot vol@v1", zfs: ["snapshot", `${P}/vol@v1`] },
    {
      label: "volume with -o canmount=noauto",
      send: ["send", `${P}/vol@v1`],
      receive: ["receive", "-s", "-u", ...noauto, `${P}/cmvol`],
    },
    { label: "the refused volume is not there", zfs: ["list", "-H", "-o", "name", `${P}/cmvol`] },
    { label: "mount -a", sh: "zfs mount -a >/dev/null 2>&1; true" },
    props("mount -a leaves canmount=noauto alone", `${P}/cm`),
    { label: "mount by name", zfs: ["mount", `${P}/cm`] },
    props("mounted by name", `${P}/cm`),
  ];
}

/** native encryption: properties, keys, raw and decrypting sends and receives */
function ENCRYPTION(): Step[] {
  const E = `${P}/enc`;
  const keyOpts = ["-o", "encryption=on", "-o", "keyformat=passphrase"];
  return [
    {
      label: "key files",
      sh: `printf passphrase1 > ${KEY} && printf wrongpass1 > ${WRONG_KEY} && printf short > ${SHORT_KEY}`,
    },
    { label: "create enc", zfs: ["create", ...keyOpts, "-o", `keylocation=file://${KEY}`, E] },
    { label: "create enc/child (inherits)", zfs: ["create", `${E}/child`] },
    { label: "write enc e1", write: { dataset: E, file: "e1", bytes: 2 * MiB } },
    { label: "snapshot -r enc@e1", zfs: ["snapshot", "-r", `${E}@e1`] },
    { label: "bookmark enc#e1", zfs: ["bookmark", `${E}@e1`, `${E}#e1`] },
    cryptList("crypt properties", P),
    {
      label: "get crypt properties",
      zfs: [
        "get",
        "-Hp",
        "encryption,keystatus,encryptionroot,keyformat,keylocation,pbkdf2iters",
        `${P}/src`,
        `${P}/src@s4`,
        `${P}/src#b4`,
        E,
        `${E}@e1`,
        `${E}#e1`,
        `${E}/child`,
      ],
      stdout: "compare",
    },
    {
      label: "create: keyformat missing",
      zfs: ["create", "-o", "encryption=on", "-o", `keylocation=file://${KEY}`, `${P}/e2`],
    },
    {
      label: "create: passphrase too short",
      zfs: ["create", ...keyOpts, "-o", `keylocation=file://${SHORT_KEY}`, `${P}/e2`],
    },
    {
      label: "create: bad cipher",
      zfs: ["create", "-o", "encryption=aes-999", "-o", "keyformat=passphrase", `${P}/e2`],
    },
    {
      label: "create: keyformat without encryption",
      zfs: ["create", "-o", "keyformat=passphrase", "-o", `keylocation=file://${KEY}`, `${P}/e2`],
    },
    {
      label: "create: aes-128-ccm root below enc",
      zfs: [
        "create",
        "-o",
        "encryption=aes-128-ccm",
        "-o",
        "keyformat=passphrase",
        "-o",
        `keylocation=file://${KEY}`,
        `${E}/ccm`,
      ],
    },
    cryptList("crypt properties of a nested root", `${E}/ccm`),
    {
      label: "raw full send",
      send: ["send", "-w", `${E}@e1`],
      receive: ["receive", "-s", "-u", `${P}/rawdst`],
    },
    cryptList("raw target: own root, no key", `${P}/rawdst`),
    { label: "mount raw target without key", zfs: ["mount", `${P}/rawdst`] },
    { label: "write enc e2", write: { dataset: E, file: "e2", bytes: 2 * MiB } },
    { label: "snapshot enc@e2", zfs: ["snapshot", `${E}@e2`] },
    {
      label: "cut raw incremental",
      send: ["send", "-w", "-i", "@e1", `${E}@e2`],
      receive: ["receive", "-s", "-u", `${P}/rawdst`],
      cut: 500_000,
    },
    { label: "raw token records rawok", tokenOf: `${P}/rawdst` },
    { label: "resume raw", resume: `${P}/rawdst` },
    {
      label: "decrypting full send",
      send: ["send", `${E}@e1`],
      receive: ["receive", "-s", "-u", `${P}/plaindst`],
    },
    cryptList("decrypted target is plain", `${P}/plaindst`),
    {
      label: "raw incremental onto a plain target",
      send: ["send", "-w", "-i", "@e1", `${E}@e2`],
      receive: ["receive", "-s", "-u", `${P}/plaindst`],
    },
    {
      label: "decrypting incremental onto a raw target without key",
      send: ["send", "-i", "@e1", `${E}@e2`],
      receive: ["receive", "-s", "-u", `${P}/rawdst`],
    },
    {
      label: "plain stream below an encrypted parent",
      send: ["send", `${P}/src@s3`],
      receive: ["receive", "-s", "-u", `${E}/fromplain`],
    },
    {
      label: "raw stream below an encrypted parent",
      send: ["send", "-w", `${E}@e1`],
      receive: ["receive", "-s", "-u", `${E}/rawin`],
    },
    {
      label: "raw -w of a plain dataset",
      send: ["send", "-w", `${P}/src@s3`],
      receive: ["receive", "-s", "-u", `${P}/rawplain`],
    },
    cryptList("received below enc, raw of plain", P),
    {
      label: "raw full -F over a plain dataset",
      send: ["send", "-w", `${E}@e1`],
      receive: ["receive", "-s", "-u", "-F", `${P}/rawplain`],
    },
    { label: "load-key: wrong key", zfs: ["load-key", "-L", `file://${WRONG_KEY}`, `${P}/rawdst`] },
    {
      label: "load-key: missing file",
      zfs: ["load-key", "-L", "file:///nonexistent", `${P}/rawdst`],
    },
    { label: "load-key", zfs: ["load-key", "-L", `file://${KEY}`, `${P}/rawdst`] },
    { label: "load-key again", zfs: ["load-key", "-L", `file://${KEY}`, `${P}/rawdst`] },
    cryptList("raw target with key", `${P}/rawdst`),
    { label: "mount raw target with key", zfs: ["mount", `${P}/rawdst`] },
    { label: "unload-key while mounted", zfs: ["unload-key", `${P}/rawdst`] },
    { label: "unmount raw target", zfs: ["unmount", `${P}/rawdst`] },
    { label: "unload-key", zfs: ["unload-key", `${P}/rawdst`] },
    { label: "unload-key again", zfs: ["unload-key", `${P}/rawdst`] },
    { label: "load-key of a child", zfs: ["load-key", `${E}/child`] },
    { label: "unload-key of a child", zfs: ["unload-key", `${E}/child`] },
    { label: "load-key of a plain dataset", zfs: ["load-key", `${P}/src`] },
    { label: "unmount enc/child", zfs: ["unmount", `${E}/child`] },
    { label: "unmount enc", zfs: ["unmount", E] },
    { label: "unload-key enc", zfs: ["unload-key", E] },
    cryptList("enc without key", E),
    { label: "decrypting send without key", zfs: ["send", `${E}@e1`] },
    { label: "estimate without key", zfs: ["send", "-nvP", `${E}@e1`], stdout: "shape" },
    { label: "create below enc without key", zfs: ["create", `${E}/new`] },
    {
      label: "plain stream below enc without key",
      send: ["send", `${P}/src@s3`],
      receive: ["receive", "-s", "-u", `${E}/fromplain2`],
    },
    {
      label: "raw incremental from enc without key",
      send: ["send", "-w", "-i", "@e1", `${E}@e2`],
      receive: ["receive", "-s", "-u", `${P}/rawdst2`],
    },
    {
      label: "raw full from enc without key",
      send: ["send", "-w", `${E}@e2`],
      receive: ["receive", "-s", "-u", `${P}/rawdst2`],
    },
    { label: "mount enc without key", zfs: ["mount", E] },
    { label: "load-key enc from its keylocation", zfs: ["load-key", E] },
    { label: "mount enc with key", zfs: ["mount", E] },
    { label: "list after encryption", list: P },
  ];
}

/** holds on many snapshots in one command, -r, and the errors of each operand */
function HOLDS(): Step[] {
  const H = `${P}/h`;
  return [
    { label: "create h", zfs: ["create", H] },
    { label: "create h/c", zfs: ["create", `${H}/c`] },
    { label: "snapshot -r h@a", zfs: ["snapshot", "-r", `${H}@a`] },
    { label: "snapshot -r h@b", zfs: ["snapshot", "-r", `${H}@b`] },
    { label: "hold many", zfs: ["hold", "t1", `${H}@a`, `${H}/c@a`, `${H}@b`] },
    { label: "hold: tag exists on one", zfs: ["hold", "t1", `${H}@a`, `${H}/c@b`] },
    { label: "hold: missing snapshot", zfs: ["hold", "t2", `${H}@a`, `${H}@nope`, `${H}/c@b`] },
    { label: "hold: missing dataset", zfs: ["hold", "t3", `${P}/nope@a`, `${H}@b`] },
    { label: "hold: not a snapshot", zfs: ["hold", "t3", H] },
    { label: "hold -r", zfs: ["hold", "-r", "t4", `${H}@b`] },
    { label: "hold -r: tag exists below", zfs: ["hold", "-r", "t2", `${H}@b`] },
    { label: "list with holds", list: H },
    {
      label: "holds -H many",
      zfs: ["holds", "-H", `${H}@a`, `${H}/c@a`, `${H}@b`, `${H}/c@b`],
      stdout: "shape",
    },
    { label: "holds -rH", zfs: ["holds", "-rH", `${H}@b`], stdout: "shape" },
    {
      label: "holds -rH: a dataset missing",
      zfs: ["holds", "-rH", `${P}/nope@a`, `${H}@b`],
      stdout: "shape",
    },
    { label: "holds -rH: a name nowhere below", zfs: ["holds", "-rH", `${H}@nowhere`] },
    { label: "holds table", zfs: ["holds", `${H}@a`, `${H}/c@a`], stdout: "shape" },
    { label: "holds: one missing", zfs: ["holds", "-H", `${H}@a`, `${H}@nope`], stdout: "shape" },
    { label: "holds: all missing", zfs: ["holds", `${H}@nope`], stdout: "shape" },
    { label: "holds: not a snapshot", zfs: ["holds", "-H", `${H}@a`, H], stdout: "shape" },
    { label: "release many", zfs: ["release", "t1", `${H}@a`, `${H}/c@a`] },
    {
      label: "release: tag missing on one",
      zfs: ["release", "t1", `${H}@b`, `${H}/c@b`, `${H}@a`],
    },
    { label: "release: missing snapshot", zfs: ["release", "t4", `${H}@nope`, `${H}/c@b`] },
    { label: "release -r where the tag is", zfs: ["release", "-r", "t4", `${H}@b`] },
    { label: "release -r: tag nowhere", zfs: ["release", "-r", "t9", `${H}@b`] },
    { label: "release: not a snapshot", zfs: ["release", "t2", H] },
    { label: "list after releases", list: H },
    // each held snapshot named; within a dataset in no fixed order (seen both ways)
    { label: "destroy held snapshots", zfs: ["destroy", `${H}@a,b`], stderr: "sorted-lines" },
    { label: "destroy -r a tree with holds", zfs: ["destroy", "-r", H], stderr: "sorted-lines" },
  ];
}

/** the shell text of abgleich's bookmark program on `pool` for SNAPSHOT BOOKMARK pairs */
function program(words: readonly string[], pool = P): string {
  const pairs = [];
  for (let i = 0; i < words.length; i += 2)
    pairs.push({ snapshot: words[i] as string, bookmark: words[i + 1] as string });
  return shellJoin(zfsBookmarkProgram(pool, pairs));
}

/** bookmarks: creation and errors, listing, incremental sources (also after the snapshot) */
function BOOKMARKS(): Step[] {
  const B = `${P}/bm`;
  return [
    { label: "create bm", zfs: ["create", B] },
    { label: "write bm a", write: { dataset: B, file: "a", bytes: MiB } },
    { label: "snapshot bm@a", zfs: ["snapshot", `${B}@a`] },
    { label: "write bm b", write: { dataset: B, file: "b", bytes: MiB } },
    { label: "snapshot bm@b", zfs: ["snapshot", `${B}@b`] },
    { label: "write bm c", write: { dataset: B, file: "c", bytes: MiB } },
    { label: "snapshot bm@c", zfs: ["snapshot", `${B}@c`] },
    { label: "bookmark bm#a", zfs: ["bookmark", `${B}@a`, `${B}#a`] },
    { label: "bookmark short form", zfs: ["bookmark", `${B}@b`, "#b"] },
    { label: "bookmark exists", zfs: ["bookmark", `${B}@b`, `${B}#a`] },
    { label: "bookmark of a bookmark", zfs: ["bookmark", `${B}#a`, `${B}#a2`] },
    { label: "bookmark: missing snapshot", zfs: ["bookmark", `${B}@nope`, `${B}#x`] },
    { label: "bookmark: missing dataset", zfs: ["bookmark", `${B}@a`, `${P}/nope#x`] },
    { label: "bookmark: bad name", zfs: ["bookmark", `${B}@a`, `${B}#bad@name`] },
    { label: "bookmark: no #", zfs: ["bookmark", `${B}@a`, B] },
    { label: "list with bookmarks", list: B },
    {
      label: "bookmarks keep their snapshot's guid, createtxg, creation",
      zfs: ["list", "-t", "all", "-Hp", "-o", "name,type,createtxg,creation", "-r", B],
      stdout: "bookmark-twins",
    },
    {
      label: "list -t bookmark",
      zfs: ["list", "-t", "bookmark", "-Hp", "-o", "name", "-r", B],
      stdout: "compare",
    },
    // abgleich's bookmark program, run as the port runs it (its output read on stderr)
    {
      label: "program: two bookmarks",
      sh: `${program([`${B}@a`, `${B}#pa`, `${B}@b`, `${B}#pb`])} >&2`,
    },
    {
      label: "program: one exists, none made",
      sh: program([`${B}@c`, `${B}#pc`, `${B}@b`, `${B}#a`]),
    },
    { label: "program: missing snapshot", sh: program([`${B}@nope`, `${B}#px`]) },
    { label: "program: missing pool", sh: program([`${B}@a`, `${B}#pq`], "nopool") },
    { label: "program: another dataset's snapshot", sh: program([`${B}@a`, `${P}/src#pz`]) },
    // both pass the checks; the second then exists: the first stays made
    { label: "program: one pair twice", sh: program([`${B}@c`, `${B}#pd`, `${B}@c`, `${B}#pd`]) },
    {
      label: "list -t bookmark after the programs",
      zfs: ["list", "-t", "bookmark", "-Hp", "-o", "name", "-r", B],
      stdout: "compare",
    },
    { label: "list a bookmark without -t", zfs: ["list", "-Hp", "-o", "name", `${B}#a`] },
    {
      label: "list -t bookmark by name",
      zfs: ["list", "-t", "bookmark", "-Hp", "-o", "name", `${B}#a`],
      stdout: "compare",
    },
    {
      label: "full bm@a",
      send: ["send", `${B}@a`],
      receive: ["receive", "-s", "-u", `${P}/bmdst`],
    },
    {
      label: "incremental from a bookmark",
      send: ["send", "-i", `${B}#a`, `${B}@b`],
      receive: ["receive", "-s", "-u", `${P}/bmdst`],
    },
    { label: "-I from a bookmark", zfs: ["send", "-I", "#a", `${B}@c`] },
    { label: "destroy bm@b (its bookmark stays)", zfs: ["destroy", `${B}@b`] },
    {
      label: "estimate from a bookmark",
      zfs: ["send", "-nvP", "-i", "#b", `${B}@c`],
      stdout: "shape",
    },
    {
      label: "incremental #short from a bookmark whose snapshot is gone",
      send: ["send", "-i", "#b", `${B}@c`],
      receive: ["receive", "-s", "-u", `${P}/bmdst`],
    },
    { label: "bookmark from another dataset", zfs: ["send", "-i", `${B}#a`, `${P}/src@s4`] },
    { label: "bookmark later than the snapshot", zfs: ["send", "-i", `${B}#b`, `${B}@a`] },
    {
      label: "raw incremental from a bookmark",
      send: ["send", "-w", "-i", `${P}/enc#e1`, `${P}/enc@e2`],
      receive: ["receive", "-s", "-u", `${P}/rawdst3`],
    },
    { label: "destroy -n a bookmark", zfs: ["destroy", "-n", `${B}#a2`] },
    { label: "destroy a bookmark", zfs: ["destroy", `${B}#a2`] },
    { label: "destroy a missing bookmark", zfs: ["destroy", `${B}#a2`] },
    { label: "list after bookmarks", list: B },
    // several streams through one pipe: each receive reads exactly its own stream
    {
      label: "three streams back to back into three receives",
      sh: [
        `{ ${shellJoin(["zfs", "send", `${B}@a`])} && ${shellJoin(["zfs", "send", `${B}@c`])} && ${shellJoin(["zfs", "send", "-i", `${B}@a`, `${B}@c`])}; }`,
        `{ ${shellJoin(["zfs", "receive", "-s", "-u", `${P}/b2b1`])} && ${shellJoin(["zfs", "receive", "-s", "-u", `${P}/b2b2`])} && ${shellJoin(["zfs", "receive", "-s", "-u", `${P}/b2b1`])} && [ "$(wc -c)" -eq 0 ]; }`,
      ].join(" | "),
    },
    { label: "list after streams back to back", list: `${P}/b2b1` },
    // a receive that refuses its stream leaves the rest of it: the next one reads from its middle
    {
      label: "a refused stream, then the next receive",
      sh: [
        `{ ${shellJoin(["zfs", "send", `${B}@a`])} && ${shellJoin(["zfs", "send", `${B}@c`])}; } 2>/dev/null`,
        `{ ${shellJoin(["zfs", "receive", "-s", "-u", `${P}/b2b2`])}; ${shellJoin(["zfs", "receive", "-s", "-u", `${P}/b2b3`])}; }`,
      ].join(" | "),
    },
  ];
}

/** send -c -L -e -w (and long forms): accepted everywhere; the token records the features */
function SEND_FLAGS(): Step[] {
  const B = `${P}/bm`;
  const cut = (label: string, flags: string[]): Step[] => [
    {
      label: `cut ${label}`,
      send: ["send", ...flags, "-i", "@a", `${B}@c`],
      receive: ["receive", "-s", "-u", `${P}/flags`],
      cut: 300_000,
    },
    { label: `token of ${label}`, tokenOf: `${P}/flags` },
    { label: `abort ${label}`, zfs: ["receive", "-A", `${P}/flags`] },
  ];
  return [
    {
      label: "full for flags",
      send: ["send", "-c", `${B}@a`],
      receive: ["receive", "-u", `${P}/flags`],
    },
    ...cut("plain", []),
    ...cut("-c", ["-c"]),
    ...cut("-e", ["-e"]),
    ...cut("-L", ["-L"]),
    ...cut("-w of a plain dataset", ["-w"]),
    ...cut("long forms", ["--compressed", "--large-block", "--embed", "--raw"]),
    ...cut("-Lce", ["-Lce"]),
    { label: "estimate -c", zfs: ["send", "-nvP", "-c", "-i", "@a", `${B}@c`], stdout: "shape" },
    { label: "estimate -Lecw", zfs: ["send", "-nvP", "-Lecw", `${P}/enc@e2`], stdout: "shape" },
    {
      label: "-Lec incremental",
      send: ["send", "-L", "-e", "-c", "-I", "@a", `${B}@c`],
      receive: ["receive", "-s", "-u", `${P}/flags`],
    },
    {
      label: "cut raw full of enc",
      send: ["send", "--raw", `${P}/enc@e2`],
      receive: ["receive", "-s", "-u", `${P}/rawfull`],
      cut: 1_000_000,
    },
    { label: "token of a raw full", tokenOf: `${P}/rawfull` },
    cryptList("raw full in progress", `${P}/rawfull`),
    { label: "resume raw full", resume: `${P}/rawfull` },
    cryptList("raw full resumed", `${P}/rawfull`),
  ];
}

/** `zfs send SEND | zfs receive -s -u [EXTRA] TARGET` as one step */
function receives(label: string, send: string[], target: string, extra: string[] = []): Step[] {
  return [{ label, send, receive: ["receive", "-s", "-u", ...extra, target] }];
}

/** the shell text of one step; `sim` swaps real file writes for the simulator's sim-write */
export function stepCommand(step: Step, sim: boolean, written: Set<string>): string {
  if ("zfs" in step) return shellJoin(["zfs", ...step.zfs]);
  if ("write" in step) {
    const { dataset, file, bytes } = step.write;
    const key = `${dataset}/${file}`;
    const isNew = !written.has(key);
    written.add(key);
    if (sim)
      return shellJoin([
        "zfs",
        "sim-write",
        dataset,
        String(bytes),
        isNew ? `/${file}` : `M /${file}`,
      ]);
    return `head -c ${bytes} /dev/urandom >> ${shellQuote(`/${key}`)} && zpool sync`;
  }
  if ("send" in step) {
    const cut = step.cut === undefined ? "" : ` | head -c ${step.cut}`;
    return `${shellJoin(["zfs", ...step.send])}${cut} | ${shellJoin(["zfs", ...step.receive])}`;
  }
  if ("inFlight" in step) {
    // the background receive's output goes to files of its own, read by its finish step
    const { name, send, receive, stall } = step.inFlight;
    const f = (suffix: string) => `"$tmp/${name}.${suffix}"`;
    return [
      `${shellJoin(["zfs", ...send])} > ${f("stream")}`,
      `{ { head -c ${stall} ${f("stream")}; : > ${f("stalled")}; ${waitFor(f("go"))}; tail -c +${stall + 1} ${f("stream")}; } | ${shellJoin(["zfs", ...receive])} > ${f("out")} 2> ${f("err")}; echo $? > ${f("rc")}; } < /dev/null > /dev/null 2>&1 &`,
      waitFor(f("stalled")),
    ].join("\n");
  }
  if ("finish" in step) {
    const f = (suffix: string) => `"$tmp/${step.finish}.${suffix}"`;
    return [
      `: > ${f("go")}`,
      waitFor(f("rc")),
      `cat ${f("out")}; cat ${f("err")} >&2; exit "$(cat ${f("rc")})"`,
    ].join("\n");
  }
  if ("sh" in step) return step.sh;
  if ("tokenOf" in step) {
    const token = `"$(${shellJoin(["zfs", "get", "-H", "-o", "value", "receive_resume_token", step.tokenOf])})"`;
    return `zfs send -nv -t ${token}`;
  }
  if ("resume" in step) {
    const token = `"$(${shellJoin(["zfs", "get", "-H", "-o", "value", "receive_resume_token", step.resume])})"`;
    return `zfs send -t ${token} | ${shellJoin(["zfs", "receive", "-s", "-u", ...(step.options ?? []), step.resume])}`;
  }
  return shellJoin([
    "zfs",
    "list",
    "-t",
    "all",
    "-Hp",
    "-o",
    LIST_COLUMNS.join(","),
    "-r",
    step.list,
  ]);
}

/** waits (at most a minute) until FILE exists; FILE is shell text, already quoted */
function waitFor(file: string): string {
  return `n=0; while [ ! -e ${file} ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done`;
}

/** one shell script running every step, its output framed by markers for parseRun */
export function historyScript(steps: readonly Step[], sim: boolean): string {
  const written = new Set<string>();
  const lines = ["tmp=$(mktemp -d)"];
  steps.forEach((step, index) => {
    lines.push(
      `printf '@@step %d\\n' ${index}`,
      `( ${stepCommand(step, sim, written)} ) >"$tmp/out" 2>"$tmp/err"`,
      `printf '@@rc %d\\n' $?`,
      `cat "$tmp/out"; printf '@@err\\n'; cat "$tmp/err"`,
    );
  });
  // the key files sit at fixed paths (the keylocation property compared on both sides names them)
  lines.push(`printf '@@end\\n'`, `rm -rf "$tmp"`, `rm -f ${KEY} ${WRONG_KEY} ${SHORT_KEY}`);
  return lines.join("\n");
}

export interface StepResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function parseRun(output: string, count: number): StepResult[] {
  const results: StepResult[] = [];
  const parts = output.split(/^@@step \d+\n/m).slice(1);
  for (const part of parts) {
    const match = /^@@rc (\d+)\n([\s\S]*?)@@err\n([\s\S]*)$/.exec(part.replace(/@@end\n$/, ""));
    if (!match) throw new Error(`unparsable step output: ${part.slice(0, 200)}`);
    results.push({ code: Number(match[1]), stdout: match[2] ?? "", stderr: match[3] ?? "" });
  }
  if (results.length !== count)
    throw new Error(`expected ${count} step results, got ${results.length}`);
  return results;
}

/** the form of a text without its numbers (sizes, times): every digit run becomes N */
function shape(text: string): string {
  return text.replace(/\d+/g, "N").trim();
}

/** guids → ids by first appearance; tokens and sizes → presence; held counts kept */
export function normalize(steps: readonly Step[], results: readonly StepResult[]): StepResult[] {
  const ids = new Map<string, string>();
  const id = (guid: string) => {
    if (!ids.has(guid)) ids.set(guid, `g${ids.size + 1}`);
    return ids.get(guid) ?? "";
  };
  const token = (text: string) => text.replace(/\b1-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+\b/g, "<token>");
  return results.map((result, index) => {
    const step = steps[index];
    let stdout = "";
    if (step && "list" in step) {
      stdout = result.stdout
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => {
          const [name, type, guid = "", resume = "", userrefs, written = "-"] = line.split("\t");
          const writtenMark = written === "-" ? "-" : written === "0" ? "0" : ">0";
          return [
            name,
            type,
            id(guid),
            resume === "-" ? "-" : "<token>",
            userrefs,
            writtenMark,
          ].join("\t");
        })
        .join("\n");
    } else if (step && "zfs" in step && step.stdout === "sorted-lines") {
      stdout = result.stdout
        .split("\n")
        .filter((l) => l !== "")
        .sort()
        .join("\n");
    } else if (step && "zfs" in step && step.stdout === "compare") {
      stdout = result.stdout;
    } else if (step && "tokenOf" in step) {
      // the token's pairs by name (their values are guids and offsets)
      stdout = result.stdout
        .split("\n")
        .filter((line) => line.startsWith("\t"))
        .map((line) => line.trim().split(" = ")[0])
        .join("\n");
    } else if (step && "zfs" in step && step.stdout === "bookmark-twins") {
      // `name type createtxg creation` rows: each bookmark with the snapshot it matches
      const rows = result.stdout
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split("\t"));
      stdout = rows
        .map(([name, type, txg, creation]) => {
          const twin = rows.find((r) => r[1] === "snapshot" && r[2] === txg && r[3] === creation);
          return `${name}\t${type}${type === "bookmark" ? `\t${twin?.[0] ?? "none"}` : ""}`;
        })
        .join("\n");
    } else if (step && "zfs" in step && step.stdout === "shape") {
      return { code: result.code, stdout: shape(result.stdout), stderr: shape(result.stderr) };
    }
    const stderr = token(result.stderr).trim();
    if (step && "zfs" in step && step.stderr === "sorted-lines")
      return { code: result.code, stdout, stderr: stderr.split("\n").sort().join("\n") };
    return { code: result.code, stdout, stderr };
  });
}

export interface Difference {
  step: string;
  field: keyof StepResult;
  real: string;
  sim: string;
}

export function differences(
  steps: readonly Step[],
  real: readonly StepResult[],
  sim: readonly StepResult[],
): Difference[] {
  const found: Difference[] = [];
  steps.forEach((step, index) => {
    for (const field of ["code", "stdout", "stderr"] as const) {
      const a = String(real[index]?.[field]);
      const b = String(sim[index]?.[field]);
      if (a !== b) found.push({ step: step.label, field, real: a, sim: b });
    }
  });
  return found;
}

/** known, deliberate differences: each with why it is out of the simulator's scope */
export interface AllowedDifference {
  step: string;
  field: keyof StepResult;
  reason: string;
}

export function unexplained(found: readonly Difference[], allowed: readonly AllowedDifference[]) {
  return found.filter((d) => !allowed.some((a) => a.step === d.step && a.field === d.field));
}
