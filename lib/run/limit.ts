// Run async work over items with at most `limit` at a time, results in input order. Used for
// the per-dataset read-only questions (`zfs diff`, `zfs send -nvP`) that cannot be batched into
// one zfs call: over one shared ssh connection several can be in flight at once.

/**
 * The first failure rejects the whole call, and no new item is started after it: a host that
 * went down, a timeout or a cancel ends the questions instead of being asked again per item.
 * Items already running finish (their commands have their own timeout and signal).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index] as T, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** how many read-only zfs questions run at once per host */
export const QUERY_CONCURRENCY = 4;
