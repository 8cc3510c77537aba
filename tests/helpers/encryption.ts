// The `zfs create` arguments of an encrypted dataset whose passphrase is in a file: how the
// tests make one, on the simulator and on real OpenZFS alike.

export const encryptedCreateArgs = (dataset: string, keyFile: string): string[] => [
  "create",
  "-o",
  "encryption=on",
  "-o",
  "keyformat=passphrase",
  "-o",
  `keylocation=file://${keyFile}`,
  dataset,
];
