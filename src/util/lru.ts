// A least-recently-used cache of promises: bounded memory for things loaded on demand. Each entry
// has a cost (1 by default: the capacity is an entry count; bytes for index shards: the capacity is
// a memory budget). The entry just asked for is never evicted, so one larger than the whole
// capacity is still loaded, alone. A failed load is forgotten, so the next get loads it again.
interface Entry<T> {
  value: Promise<T>;
  cost: number;
}

export class LruCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private total = 0;
  constructor(private readonly capacity: number) {}

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The summed cost of what is held. */
  get used(): number {
    return this.total;
  }

  get(key: string, load: () => Promise<T>, cost = 1): Promise<T> {
    const hit = this.entries.get(key);
    const entry: Entry<T> = hit ?? { value: load(), cost };
    if (hit) {
      this.entries.delete(key); // re-insert: Map order is recency order
    } else {
      this.total += cost;
      entry.value.catch(() => this.entries.get(key) === entry && this.drop(key));
    }
    this.entries.set(key, entry);
    // Least recently used first; callers keep their own reference to values in use.
    for (const k of this.entries.keys()) {
      if (this.total <= this.capacity || k === key) break;
      this.drop(k);
    }
    return entry.value;
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.total -= e.cost;
  }
}
