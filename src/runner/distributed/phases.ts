// The shape of a distributed run: the phases phase-plan.ts derives from the pipeline's registry,
// each a BullMQ flow whose root is a barrier job on the control queue. When a barrier's children
// are all complete, BullMQ releases it; a worker runs it, and it plans and enqueues the next phase:
//
//   start           -> after.manifest  <- manifest <- catalog units
//   after.manifest  -> after.embed     <- embed units
//   after.embed     -> after.partition <- partition units (shard routers; none unless index.probe_shards > 0)
//   after.partition -> after.route     <- assign units, route units (parts; likewise)
//   after.route     -> after.index     <- index units
//   after.index     -> after.recall    <- search units (space, shard, query parts), recall units
//   after.recall    -> after.mine      <- mine units (parts)
//   after.mine      -> after.select    <- select
//   after.select    -> after.jsonl     <- jsonl <- emit n <- annotate n   (per part: pipelined)
//   after.jsonl     -> writes summary.json; its return value is the run's summary
//
// Every job id is deterministic, so a barrier that runs twice (a crash after enqueueing) adds nothing.
// Units whose artifacts are complete are not enqueued at all (counted as skipped), so a run enqueued
// again (after Redis lost it, or after its finished jobs were trimmed) plans only what is left. A
// barrier closes its phase (retention.ts): sums the units into stage reports, trims their jobs.
import type { FlowChildJob, FlowJob, JobsOptions } from 'bullmq';
import { pipelineStages, stagesByName } from '../../pipeline.ts';
import { barriersBefore, phasesOf, START, type Phase } from './phase-plan.ts';
import type { Stage, StageContext } from '../../core/stage.ts';
import { plannedUnits } from '../unit-executor.ts';
import { emptyTally, reportOf, type StageReport } from '../../core/stage-report.ts';
import type { RunSummary } from '../../report/run-summary.ts';
import { saveSummary, summarize } from '../../report/summary.ts';
import type { PublishedRun } from './run-identity.ts';
import { stageReason, stageStatus } from '../../provenance/explain.ts';
import { barrierJobId, CONTROL, jobOptions, STAGE_NAMES, unitJobId, type ControlJobData, type Planned, type RunQueues, type UnitJobData } from './queues.ts';
import { closePhase, savedReports } from './retention.ts';

const PHASES = phasesOf(pipelineStages());
const FINAL = PHASES.at(-1)!.barrier;
/** Each barrier and the one whose job enqueues it; job-check.ts runs no other. */
export const BARRIER_BEFORE: Readonly<Record<string, string>> = barriersBefore(PHASES);
/** Each barrier's phase: the stages whose units it waits for (its job's `planned` names these, job-check.ts). */
export const PHASE_STAGES: Readonly<Record<string, readonly string[]>> = Object.fromEntries(PHASES.map((p) => [p.barrier, p.stages.map((s) => s.name)]));
/** The job id of the run's last barrier, whose return value is the run's result. */
export const finalJobId = (runKey: string) => barrierJobId(FINAL, runKey);

export interface RunResult {
  /** Nothing was left to do: the summary (and report) are those of the run that did the work. */
  reused?: boolean;
  summary: RunSummary;
  reports: StageReport[];
  /** From the run's publishing to its summary: what a follower that joined late prints as the total. */
  seconds?: number;
}

class Phases {
  private readonly stages = stagesByName();
  /** What the phase being built planned, per stage: carried by its barrier. */
  readonly planned: Planned = {};
  // The same for every job of the run: made once, not once per unit.
  private readonly options: JobsOptions;
  constructor(
    private readonly ctx: StageContext,
    private readonly rq: RunQueues,
    private readonly runKey: string,
  ) {
    this.options = jobOptions(ctx.config);
  }

  stage(name: string): Stage<any> {
    const s = this.stages.get(name);
    if (!s) throw new Error(`no stage "${name}" in the pipeline`);
    return s;
  }

  unit(stage: string, unit: unknown, children?: FlowChildJob[]): FlowChildJob {
    const s = this.stage(stage);
    const data: UnitJobData = { stage, unit, run: this.runKey };
    const jobId = unitJobId(stage, this.ctx.layout.keys[stage], s.unitId(unit));
    return { name: stage, queueName: this.rq.name(stage), data, opts: { ...this.options, jobId }, children };
  }

  /** The stage's units whose artifacts are not complete yet (the rest are counted as skipped). */
  async todo(stage: string): Promise<unknown[]> {
    const { units, todo } = await plannedUnits(this.ctx, this.stage(stage));
    this.planned[stage] = { units: units.length, skipped: units.length - todo.length };
    return todo;
  }

  barrier(barrier: string, children: FlowChildJob[]): FlowJob {
    const data: ControlJobData = { barrier, run: this.runKey, planned: this.planned };
    return { name: barrier, queueName: this.rq.name(CONTROL), data, opts: { ...this.options, jobId: barrierJobId(barrier, this.runKey) }, children };
  }

  /** The flow that follows `barrier`, or undefined after the last. */
  async next(barrier: string): Promise<FlowJob | undefined> {
    const at = barrier === START ? 0 : PHASES.findIndex((p) => p.barrier === barrier) + 1;
    if (at === 0 && barrier !== START) throw new Error(`unknown barrier "${barrier}"`);
    const phase = PHASES[at];
    return phase && this.flowOf(phase);
  }

  /**
   * A phase's units not complete yet. A chained stage's unit waits on the jobs of the stages it
   * reads in the phase (`unit`: the same unit id; `all`: every one, through the chains below
   * them); every job nothing waits on waits for the barrier.
   */
  private async flowOf(phase: Phase): Promise<FlowJob> {
    const open = new Map<string, Map<string, FlowChildJob>>(); // stage -> unit id -> a job nothing in the phase waits on yet
    for (const stage of phase.stages) {
      const reads = readsWithin(stage, phase);
      const jobs = new Map<string, FlowChildJob>();
      for (const unit of await this.todo(stage.name)) {
        const id = stage.unitId(unit);
        const children: FlowChildJob[] = [];
        for (const r of reads) {
          const waiting = open.get(r)!;
          const taken = stage.chain === 'unit' ? [id].filter((u) => waiting.has(u)) : stage.chain === 'all' ? [...waiting.keys()] : [];
          for (const u of taken) children.push(waiting.get(u)!), waiting.delete(u);
        }
        jobs.set(id, this.unit(stage.name, unit, children.length ? children : undefined));
      }
      open.set(stage.name, jobs);
    }
    return this.barrier(
      phase.barrier,
      [...open.values()].flatMap((m) => [...m.values()]),
    );
  }
}

/** The stages of the phase before `stage` that it reads, directly or through others in the phase (nearest first). */
function readsWithin(stage: Stage<any>, phase: Phase): string[] {
  const names = new Set(phase.stages.map((s) => s.name));
  const out: string[] = [];
  const visit = (s: Stage<any>) => {
    for (const r of s.after) {
      if (!names.has(r) || out.includes(r) || r === stage.name) continue;
      out.push(r);
      if (stage.chain === 'all') visit(phase.stages.find((x) => x.name === r)!);
    }
  };
  visit(stage);
  return out;
}

/**
 * Runs a barrier job: closes the phase it waited for, then enqueues the next phase, or at the end
 * writes and returns the summary.
 */
export async function advance(ctx: StageContext, rq: RunQueues, data: ControlJobData, run: PublishedRun): Promise<RunResult | { enqueued: string }> {
  rq.run = { key: run.key, keys: ctx.layout.keys };
  if (data.planned) await closePhase(rq, barrierJobId(data.barrier, run.key), data.planned);
  const flow = await new Phases(ctx, rq, run.key).next(data.barrier);
  if (flow) {
    await rq.flows.add(flow);
    return { enqueued: flow.opts!.jobId! };
  }
  const saved = await savedReports(rq);
  const reports = STAGE_NAMES.map((s) => {
    const r = saved.get(s) ?? reportOf(s, emptyTally());
    const now = run.stages[s];
    const status = stageStatus(r.units, r.skipped);
    return { ...r, key: now.key, status, reason: stageReason(status, run.previous?.[s], now, r.units, r.skipped) };
  });
  const written = await saveSummary(ctx, await summarize(ctx, reports));
  return { summary: written.summary, reports, reused: written.reused, seconds: (Date.now() - Date.parse(run.publishedAt)) / 1000 };
}

/** Enqueues a run: the start barrier alone; a worker serving `control` plans the rest. */
export async function enqueueRun(rq: RunQueues, runKey: string): Promise<void> {
  const data: ControlJobData = { barrier: START, run: runKey };
  await rq.queue(CONTROL).add(START, data, { ...jobOptions(rq.config), jobId: barrierJobId(START, runKey) });
}
