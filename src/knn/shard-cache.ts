// Loaded index shards kept within a memory budget (index.memory_budget_mb): at the paper's scale
// one encoder's shards hold 80 GB, more than a mining worker has, so a worker keeps the shards it
// used last and drops the least recently used beyond the budget. A shard larger than the whole
// budget is still loaded, alone. Sizes are estimates from the shard's shape (hnswlib's layout).
import type { LoadedShard } from './hnsw-shard.ts';

/** Bytes hnswlib holds for `count` points of `dim` floats with M links per node (level 0 has 2M). */
export function shardBytes(count: number, dim: number, m: number): number {
  const level0 = dim * 4 + (2 * m + 1) * 4 + 8; // vector, links and their count, label
  return count * (level0 + (4 * (m + 1)) / Math.log(Math.max(m, 2)) + 64); // upper levels, locks and label map
}

interface Entry {
  shard: Promise<LoadedShard>;
  bytes: number;
}

export class ShardCache {
  private readonly entries = new Map<string, Entry>();
  private used = 0;
  constructor(private readonly budgetBytes: number) {}

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get bytes(): number {
    return this.used;
  }

  get(key: string, bytes: number, load: () => Promise<LoadedShard>): Promise<LoadedShard> {
    const hit = this.entries.get(key);
    const entry: Entry = hit ?? { shard: load(), bytes };
    if (hit) {
      this.entries.delete(key); // re-insert: Map order is recency order
    } else {
      this.used += bytes;
      // A failed load is forgotten (unless evicted meanwhile), so the next get loads it again.
      entry.shard.catch(() => this.entries.get(key) === entry && this.drop(key));
    }
    this.entries.set(key, entry);
    // Evict least recently used first; callers hold their own reference to shards in use.
    for (const k of this.entries.keys()) {
      if (this.used <= this.budgetBytes || k === key) break;
      this.drop(k);
    }
    return entry.shard;
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.used -= e.bytes;
  }
}
