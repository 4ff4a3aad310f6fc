// The shape of a distributed run. A stage's plan() may only be called once the stages before it
// are complete, so the run cannot be one flow built upfront: it is a chain of phases, each a flow
// whose root is a barrier job on the control queue. When a barrier's children are all complete,
// BullMQ releases it; a worker runs it, and it plans and enqueues the next phase:
//
//   start          -> after.manifest <- manifest <- catalog units
//   after.manifest -> after.embed    <- embed units
//   after.embed    -> after.partition <- partition units (shard routers; none unless index.probe_shards > 0)
//   after.partition -> after.assign  <- assign units, route units (parts; likewise)
//   after.assign   -> after.index    <- index units
//   after.index    -> after.search   <- search units (space, shard, query parts), recall units
//   after.search   -> after.mine     <- mine units (parts)
//   after.mine     -> after.select   <- select
//   after.select   -> after.jsonl    <- jsonl <- emit n <- annotate n   (per part: pipelined)
//   after.jsonl    -> writes summary.json; its return value is the run's summary
//
// Every job id is deterministic, so a barrier that runs twice (a crash after enqueueing) adds nothing.
// Units whose artifacts are complete are not enqueued at all (counted as skipped), so a run enqueued
// again (after Redis lost it, or after its finished jobs were trimmed) plans only what is left. A
// barrier closes its phase (retention.ts): sums the units into stage reports, trims their jobs.
import type { FlowChildJob, FlowJob, JobsOptions } from 'bullmq';
import { stagesByName } from '../../pipeline.ts';
import type { Stage, StageContext } from '../../stages/stage.ts';
import type { StageReport } from '../local.ts';
import { saveSummary, summarize, type RunSummary } from '../summary.ts';
import type { PublishedRun } from './run-identity.ts';
import { stageReason, stageStatus } from '../../provenance/explain.ts';
import { barrierJobId, CONTROL, jobOptions, STAGE_NAMES, unitJobId, type ControlJobData, type RunQueues, type UnitJobData } from './queues.ts';
import { emptyTally, reportOf } from './reports.ts';
import { closePhase, savedReports, type Planned } from './retention.ts';

export const START = 'start';
const FINAL = 'after.jsonl';
/** Each barrier and the one whose job enqueues it (see the chain above); job-check.ts runs no other. */
export const BARRIER_BEFORE: Readonly<Record<string, string>> = {
  'after.manifest': START,
  'after.embed': 'after.manifest',
  'after.partition': 'after.embed',
  'after.assign': 'after.partition',
  'after.index': 'after.assign',
  'after.search': 'after.index',
  'after.mine': 'after.search',
  'after.select': 'after.mine',
  [FINAL]: 'after.select',
};
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
  async todo(stage: string, units?: unknown[]): Promise<unknown[]> {
    const s = this.stage(stage);
    units ??= await s.plan(this.ctx);
    const done = await Promise.all(units.map((u) => s.isDone(this.ctx, u)));
    this.planned[stage] = { units: units.length, skipped: done.filter(Boolean).length };
    return units.filter((_, i) => !done[i]);
  }

  async units(stage: string): Promise<FlowChildJob[]> {
    return (await this.todo(stage)).map((u) => this.unit(stage, u));
  }

  barrier(barrier: string, children: FlowChildJob[]): FlowJob {
    const data: ControlJobData = { barrier, run: this.runKey, planned: this.planned };
    return { name: barrier, queueName: this.rq.name(CONTROL), data, opts: { ...this.options, jobId: barrierJobId(barrier, this.runKey) }, children };
  }

  /** The flow that follows `barrier`, or undefined after the last. */
  async next(barrier: string): Promise<FlowJob | undefined> {
    switch (barrier) {
      case START: {
        const catalog = await this.units('catalog');
        const manifest = await this.todo('manifest', ['manifest']);
        return this.barrier('after.manifest', manifest.length ? [this.unit('manifest', 'manifest', catalog)] : catalog);
      }
      case 'after.manifest':
        return this.barrier('after.embed', await this.units('embed'));
      case 'after.embed':
        return this.barrier('after.partition', await this.units('partition'));
      case 'after.partition':
        return this.barrier('after.assign', [...(await this.units('assign')), ...(await this.units('route'))]);
      case 'after.assign':
        return this.barrier('after.index', await this.units('index'));
      case 'after.index':
        return this.barrier('after.search', [...(await this.units('search')), ...(await this.units('recall'))]);
      case 'after.search':
        return this.barrier('after.mine', await this.units('mine'));
      case 'after.mine':
        return this.barrier('after.select', await this.units('select'));
      case 'after.select': {
        // Annotate and emit share their units (the parts), so each part flows on alone: a chain
        // of its stages that are not complete, each waiting on the one before.
        const parts = (await this.stage('annotate').plan(this.ctx)) as unknown[];
        const todo = new Map<string, Set<unknown>>();
        for (const stage of ['annotate', 'emit']) todo.set(stage, new Set(await this.todo(stage, parts)));
        const chains: FlowChildJob[] = [];
        for (const p of parts) {
          let chain: FlowChildJob | undefined;
          for (const stage of ['annotate', 'emit']) if (todo.get(stage)!.has(p)) chain = this.unit(stage, p, chain && [chain]);
          if (chain) chains.push(chain);
        }
        const jsonl = await this.todo('jsonl', ['jsonl']);
        return this.barrier(FINAL, jsonl.length ? [this.unit('jsonl', 'jsonl', chains)] : chains);
      }
      case FINAL:
        return undefined;
      default:
        throw new Error(`unknown barrier "${barrier}"`);
    }
  }
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
