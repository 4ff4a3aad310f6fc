// Worker kinds: which queues a worker process serves. GPU nodes run `gpu` (embed), CPU nodes
// `cpu` (everything else but annotation, plus the control queue that advances the run), and
// `annotate` workers mostly wait on a model server, so they scale on their own. `all` serves
// every queue (one machine, or tests). A single stage name (or `control`) serves just that queue.
import { CONTROL, STAGE_NAMES } from './queues.ts';

const WORKER_KINDS: Record<string, readonly string[]> = {
  all: [CONTROL, ...STAGE_NAMES],
  gpu: ['embed'],
  cpu: [CONTROL, ...STAGE_NAMES.filter((s) => s !== 'embed' && s !== 'annotate')],
  annotate: ['annotate'],
};

export function queuesOfKind(kind: string): readonly string[] {
  const queues = WORKER_KINDS[kind] ?? (kind === CONTROL || STAGE_NAMES.includes(kind) ? [kind] : undefined);
  if (!queues) {
    throw new Error(`unknown worker kind "${kind}" (kinds: ${Object.keys(WORKER_KINDS).join(', ')}, or one queue: ${[...STAGE_NAMES, CONTROL].join(', ')})`);
  }
  return queues;
}

/** The kinds whose workers serve a queue, the specific first (`gpu` before `all`), then the queue itself. */
export function kindsServing(queue: string): string[] {
  const kinds = Object.keys(WORKER_KINDS).filter((k) => WORKER_KINDS[k].includes(queue));
  return [...kinds.filter((k) => k !== 'all'), 'all', queue];
}
