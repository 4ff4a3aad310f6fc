// A run's queues' event streams, read by the follower (run-follower.ts) to learn what moved
// between polls without counting every queue each time.
import type { RunQueues, UnitJobResult } from './queues.ts';

/**
 * What moved since the last call. BullMQ appends every change of a job's state to its queue's
 * `events` stream, so one XREAD from the newest ids seen names the queues that moved and brings
 * each finished unit's result: following a run whose units take minutes then costs a command or
 * two per poll, where reading every queue's counts costs about a hundred. Stream ids are Redis
 * times in ms, which place units starting and finishing between polls.
 */
export class QueueEvents {
  private readonly seen = new Map<string, string>();
  constructor(private readonly rq: RunQueues) {}

  /** Starts from now: what came before is read from the jobs themselves. */
  async start(): Promise<void> {
    this.seen.clear();
    for (const { short, queue } of this.rq.all()) {
      const [newest] = await this.rq.connection.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1);
      this.seen.set(short, newest?.[0] ?? '0');
    }
  }

  /** The queues with events since the last call, and each started or finished unit in them. */
  async next(onUnit: (short: string, event: 'active' | 'completed', atMs: number, result?: UnitJobResult) => void): Promise<Set<string>> {
    const queues = this.rq.all();
    const moved = new Set<string>();
    for (;;) {
      const reply = (await this.rq.connection.xread(
        'COUNT',
        1000,
        'STREAMS',
        ...queues.map((q) => q.queue.keys.events),
        ...queues.map((q) => this.seen.get(q.short) ?? '0'),
      )) as Array<[string, Array<[string, string[]]>]> | null;
      if (!reply) return moved;
      let full = false;
      for (const [stream, entries] of reply) {
        const short = queues.find((q) => q.queue.keys.events === stream)!.short;
        moved.add(short);
        for (const [id, fields] of entries) {
          const f: Record<string, string> = {};
          for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
          const at = Number(id.split('-')[0]);
          if (f.event === 'active') onUnit(short, 'active', at);
          else if (f.event === 'completed') onUnit(short, 'completed', at, f.returnvalue ? (JSON.parse(f.returnvalue) as UnitJobResult) : undefined);
        }
        this.seen.set(short, entries[entries.length - 1][0]);
        full ||= entries.length === 1000;
      }
      if (!full) return moved;
    }
  }
}
