// A bounded queue between a producer (reading and decoding batches) and a consumer (inference):
// the producer runs at most `capacity` items ahead, so memory stays bounded while both work at once.
export class BatchQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private closed = false;
  private failure?: Error;
  private wakeConsumer?: () => void;
  private wakeProducer?: () => void;

  constructor(private readonly capacity: number) {}

  /** Resolves once there is room. */
  async put(item: T): Promise<void> {
    while (this.items.length >= this.capacity && !this.failure) await new Promise<void>((r) => (this.wakeProducer = r));
    if (this.failure) throw this.failure;
    this.items.push(item);
    this.wakeConsumer?.();
  }

  close(): void {
    this.closed = true;
    this.wakeConsumer?.();
  }

  /** Both sides see `err` at once: a failed read or decode fails the unit, queued batches or not. */
  fail(err: Error): void {
    this.failure = err;
    this.wakeConsumer?.();
    this.wakeProducer?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.items.length) {
        yield this.items.shift()!;
        this.wakeProducer?.();
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((r) => (this.wakeConsumer = r));
    }
  }
}
