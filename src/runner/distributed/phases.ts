// The shape of a distributed run. A stage's plan() may only be called once the stages before it
// are complete, so the run cannot be one flow built upfront: it is a chain of phases, each a flow
// whose root is a barrier job on the control queue. When a barrier's children are all complete,
// BullMQ releases it; a worker runs it, and it plans and enqueues the next phase:
//
//   start          -> after.manifest <- manifest <- catalog units
//   after.manifest -> after.embed    <- embed units
//   after.embed    -> after.index    <- index units
//   after.index    -> after.search   <- search units (space, shard, query parts), recall units
//   after.search   -> after.mine     <- mine units (parts)
//   after.mine     -> after.select   <- select
//   after.select   -> after.jsonl    <- jsonl <- emit n <- annotate n   (per part: pipelined)
//   after.jsonl    -> writes summary.json; its return value is the run's summary
//
// Every job id is deterministic, so a barrier that runs twice (a crash after enqueueing) adds nothing.
import type { FlowChildJob, FlowJob, JobsOptions } from 'bullmq';
import { layout } from '../../artifacts/layout.ts';
import { stagesByName } from '../../pipeline.ts';
import type { Stage, StageContext } from '../../stages/stage.ts';
import type { StageReport } from '../local.ts';
import { summarize, type RunSummary } from '../summary.ts';
import { configFingerprint, type ConfigFingerprint } from './config-fingerprint.ts';
import { CONTROL, jobOptions, unitJobId, type ControlJobData, type RunQueues, type UnitJobData } from './queues.ts';
import { stageReports } from './reports.ts';

const START = 'start';
export const FINAL = 'after.jsonl';

export interface RunResult {
  summary: RunSummary;
  reports: StageReport[];
}

class Phases {
  private readonly stages = stagesByName();
  // The same for every job of the run: made once, not once per unit.
  private readonly fingerprint: ConfigFingerprint;
  private readonly options: JobsOptions;
  constructor(
    private readonly ctx: StageContext,
    private readonly rq: RunQueues,
  ) {
    this.fingerprint = configFingerprint(ctx.config);
    this.options = jobOptions(ctx.config);
  }

  stage(name: string): Stage<any> {
    const s = this.stages.get(name);
    if (!s) throw new Error(`no stage "${name}" in the pipeline`);
    return s;
  }

  unit(stage: string, unit: unknown, children?: FlowChildJob[]): FlowChildJob {
    const s = this.stage(stage);
    const data: UnitJobData = { stage, unit, config: this.fingerprint };
    return { name: stage, queueName: this.rq.name(stage), data, opts: { ...this.options, jobId: unitJobId(stage, s.unitId(unit)) }, children };
  }

  async units(stage: string): Promise<FlowChildJob[]> {
    return (await this.stage(stage).plan(this.ctx)).map((u) => this.unit(stage, u));
  }

  barrier(barrier: string, children: FlowChildJob[]): FlowJob {
    const data: ControlJobData = { barrier, config: this.fingerprint };
    return { name: barrier, queueName: this.rq.name(CONTROL), data, opts: { ...this.options, jobId: barrier }, children };
  }

  /** The flow that follows `barrier`, or undefined after the last. */
  async next(barrier: string): Promise<FlowJob | undefined> {
    switch (barrier) {
      case START:
        return this.barrier('after.manifest', [this.unit('manifest', 'manifest', await this.units('catalog'))]);
      case 'after.manifest':
        return this.barrier('after.embed', await this.units('embed'));
      case 'after.embed':
        return this.barrier('after.index', await this.units('index'));
      case 'after.index':
        return this.barrier('after.search', [...(await this.units('search')), ...(await this.units('recall'))]);
      case 'after.search':
        return this.barrier('after.mine', await this.units('mine'));
      case 'after.mine':
        return this.barrier('after.select', await this.units('select'));
      case 'after.select': {
        // Annotate and emit share their units (the parts), so each part flows on alone.
        const parts = (await this.stage('annotate').plan(this.ctx)) as unknown[];
        const chains = parts.map((p) => this.unit('emit', p, [this.unit('annotate', p)]));
        return this.barrier(FINAL, [this.unit('jsonl', 'jsonl', chains)]);
      }
      case FINAL:
        return undefined;
      default:
        throw new Error(`unknown barrier "${barrier}"`);
    }
  }
}

/** Runs a barrier job: enqueues the next phase, or at the end writes and returns the summary. */
export async function advance(ctx: StageContext, rq: RunQueues, barrier: string): Promise<RunResult | { enqueued: string }> {
  const flow = await new Phases(ctx, rq).next(barrier);
  if (flow) {
    await rq.flows.add(flow);
    return { enqueued: flow.opts!.jobId! };
  }
  const reports = await stageReports(rq);
  const summary = await summarize(ctx, reports);
  await ctx.output.write(layout.summary(), JSON.stringify(summary, null, 1));
  return { summary, reports };
}

/** Enqueues a run: the start barrier alone; a worker serving `control` plans the rest. */
export async function enqueueRun(rq: RunQueues): Promise<void> {
  const data: ControlJobData = { barrier: START, config: configFingerprint(rq.config) };
  await rq.queue(CONTROL).add(START, data, { ...jobOptions(rq.config), jobId: START });
}
