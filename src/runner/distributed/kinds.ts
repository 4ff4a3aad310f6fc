// Worker kinds: which queues a worker process serves, from what each stage `needs` (the
// pipeline's registry). GPU nodes run `gpu` (embed), `annotate` workers serve the stages that
// mostly wait on a model endpoint (annotate), so they scale on their own, and CPU nodes `cpu`:
// everything else, plus the control queue that advances the run. `all` serves every queue (one
// machine, or tests). A single stage name (or `control`) serves just that queue.
import { pipelineStages } from '../../pipeline.ts';
import { CONTROL, STAGE_NAMES } from './queues.ts';

const stages = pipelineStages();
const needing = (need: string | undefined) => stages.filter((s) => s.needs === need).map((s) => s.name);
const WORKER_KINDS: Record<string, readonly string[]> = {
  all: [CONTROL, ...STAGE_NAMES],
  gpu: needing('gpu'),
  cpu: [CONTROL, ...needing(undefined)],
  annotate: needing('model-endpoint'),
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
