// Run async work over items with at most `limit` at a time, results in input order. Used for
// the per-dataset read-only questions (`zfs diff`, `zfs send -nvP`) that cannot be batched into
// one zfs call: over one shared ssh connection several can be in flight at once.

export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** how many read-only zfs questions run at once per host */
export const QUERY_CONCURRENCY = 4;
