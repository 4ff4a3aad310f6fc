// The phases of a distributed run, derived from the pipeline's registry. A stage's plan() may be
// called only once the stages it reads are complete, so a run is a chain of phases, each ended by
// a barrier job. A stage joins the phase before it when it reads no stage of that phase (route
// beside assign, recall beside search), or when it declares `chain` (the manifest after every
// catalog unit, emit part n after annotate part n, jsonl after every emit): its units then wait on
// those units inside the phase. Any other stage starts a new phase.
import type { Stage } from '../../core/stage.ts';

export const START = 'start';

export interface Phase {
  /** The barrier job that waits for the phase: `after.<its last stage>`. */
  barrier: string;
  stages: readonly Stage<any>[];
}

export function phasesOf(stages: readonly Stage<any>[]): Phase[] {
  const groups: Stage<any>[][] = [];
  for (const stage of stages) {
    const current = groups.at(-1);
    const readsCurrent = current?.some((s) => stage.after.includes(s.name));
    if (current && (!readsCurrent || stage.chain)) current.push(stage);
    else groups.push([stage]);
  }
  return groups.map((g) => ({ barrier: `after.${g.at(-1)!.name}`, stages: g }));
}

/** Each barrier and the one whose job enqueues it (START enqueues the first); job-check.ts runs no other. */
export function barriersBefore(phases: readonly Phase[]): Record<string, string> {
  return Object.fromEntries(phases.map((p, i) => [p.barrier, i ? phases[i - 1].barrier : START]));
}
