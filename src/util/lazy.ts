// Values made on first use and kept: `Lazy` for one value, `LazyMap` for one per key. A load that
// throws, or a promise it returns that rejects, is forgotten, so the next use loads again.
export class Lazy<T> {
  private held?: { value: T };
  constructor(private readonly load: () => T) {}

  get(): T {
    if (this.held) return this.held.value;
    const held = { value: this.load() };
    this.held = held;
    if (held.value instanceof Promise) held.value.catch(() => this.held === held && (this.held = undefined));
    return held.value;
  }
}

export class LazyMap<K, T> {
  private readonly values = new Map<string, Lazy<T>>();
  constructor(
    private readonly load: (key: K) => T,
    /** The key's identity: equal ids share one value. */
    private readonly id: (key: K) => string = String,
  ) {}

  get(key: K): T {
    const id = this.id(key);
    let lazy = this.values.get(id);
    if (!lazy) this.values.set(id, (lazy = new Lazy(() => this.load(key))));
    return lazy.get();
  }
}
