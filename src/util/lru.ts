// A small least-recently-used cache of promises: bounded memory for things loaded on demand.
export class LruCache<T> {
  private readonly entries = new Map<string, Promise<T>>();
  constructor(private readonly capacity: number) {}

  get(key: string, load: () => Promise<T>): Promise<T> {
    let p = this.entries.get(key);
    if (p) {
      this.entries.delete(key); // re-insert: Map order is recency order
    } else {
      p = load();
      p.catch(() => this.entries.delete(key));
    }
    this.entries.set(key, p);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return p;
  }
}
