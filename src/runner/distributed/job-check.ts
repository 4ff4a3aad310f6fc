// Queue data is data, never a path. Anyone who can write to the run's Redis (or a dashboard with
// actions) can add a job, so a worker never trusts a job's word for what to do: a unit job runs
// only if its unit is one the run planned: the worker plans the stage itself, under the run's
// keys (once per stage and key), and runs its own copy of the matching unit, so every storage
// key a unit builds comes from the worker's planning, under the run's roots. A barrier job runs
// only if it is a barrier of the run's chain whose phase before it has been run. Anything else is
// refused: a log line, a ledger entry (under a name made from a digest, never from the job), and
// the job completes having done nothing, its result saying why (a failed job would hold the run
// up: the follower waits on failed units), and not counted in any stage's report.
import type { Job } from 'bullmq';
import { createHash } from 'node:crypto';
import { JOB_REFUSED, UnitLedger } from '../../ledger/ledger.ts';
import { stagesByName } from '../../pipeline.ts';
import { canonicalJson } from '../../core/digest.ts';
import type { StageContext } from '../../core/stage.ts';
import { BARRIER_BEFORE, PHASE_STAGES } from './phases.ts';
import { START } from './phase-plan.ts';
import { barrierJobId, CONTROL, type ControlJobData, type Planned, type RunQueues, type UnitJobData, unitJobId } from './queues.ts';

/** What a check gives: the run's own unit, or why the job is refused. */
export type Checked = { unit: unknown } | { refused: string };

const short = (value: unknown) => {
  const text = canonicalJson(value) ?? String(value);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
};

export class JobCheck {
  private readonly stages = stagesByName();
  /** Per stage and key: each planned unit by its canonical JSON. */
  private readonly planned = new Map<string, Promise<Map<string, unknown>>>();

  constructor(
    private readonly rq: RunQueues,
    private readonly log: (line: string) => void,
  ) {}

  /** The run's own unit for the job (never the job's copy), or a refusal. `queue` is the queue the job came from. */
  async unit(ctx: StageContext, runKey: string, queue: string, job: Job<UnitJobData>): Promise<Checked> {
    const { stage: name, unit } = job.data ?? ({} as UnitJobData);
    const stage = this.stages.get(queue);
    if (!stage || name !== queue) return this.refuse(ctx, queue, job, `its stage "${String(name)}" is not its queue's (${queue})`);
    const key = ctx.layout.keys[queue];
    const plannedKey = `${queue}.${key}`;
    let units = this.planned.get(plannedKey);
    if (!units) {
      units = stage.plan(ctx).then((list: unknown[]) => new Map(list.map((u) => [canonicalJson(u), u])));
      this.planned.set(plannedKey, units);
      units.catch(() => this.planned.delete(plannedKey)); // planning failed (storage down): try again next job
    }
    const own = (await units).get(canonicalJson(unit));
    if (own === undefined) return this.refuse(ctx, queue, job, `its unit ${short(unit)} is not one the run planned for ${queue}`);
    if (job.id !== unitJobId(queue, key, stage.unitId(own)))
      return this.refuse(ctx, queue, job, `its id is not the planned unit's (${unitJobId(queue, key, stage.unitId(own))}) under run ${runKey}`);
    return { unit: own };
  }

  /** Why a barrier job is not the run's next one (unknown, misnamed, or ahead of its phase), or undefined when it is. */
  async barrier(ctx: StageContext, runKey: string, job: Job<ControlJobData>): Promise<string | undefined> {
    const barrier = job.data?.barrier;
    const before = Object.hasOwn(BARRIER_BEFORE, barrier) ? BARRIER_BEFORE[barrier] : undefined;
    if (barrier !== START && before === undefined) return (await this.refuse(ctx, CONTROL, job, `"${short(barrier)}" is not a barrier of the run`)).refused;
    if (job.id !== barrierJobId(barrier, runKey))
      return (await this.refuse(ctx, CONTROL, job, `its id is not the barrier's (${barrierJobId(barrier, runKey)})`)).refused;
    // What it says its phase planned becomes the stages' reports and names the queues it trims.
    const planned = plannedProblem(job.data.planned, barrier === START ? [] : PHASE_STAGES[barrier]);
    if (planned) return (await this.refuse(ctx, CONTROL, job, planned)).refused;
    if (before === undefined) return undefined;
    // The barrier before it enqueued it: it is active (this one had no units) or completed.
    const state = await this.rq.queue(CONTROL).getJobState(barrierJobId(before, runKey));
    if (state !== 'completed' && state !== 'active')
      return (await this.refuse(ctx, CONTROL, job, `its phase has not been reached (${before} is ${state})`)).refused;
    return undefined;
  }

  private async refuse(ctx: StageContext, stage: string, job: Job, why: string): Promise<{ refused: string }> {
    const where = `${this.rq.name(stage)} job ${short(job.id)}`;
    const message = `refused: ${why}; the job is not the run's, nothing was done`;
    this.log(`refused ${where}: ${why}`);
    // The ledger file's name is a digest of the job: nothing the job says becomes a path.
    const name = `refused-${createHash('sha256').update(`${job.queueName}\n${job.id}`).digest('hex').slice(0, 16)}`;
    const ledger = new UnitLedger(stage, name);
    ledger.failures.push({ stage, unit: name, item: short(job.data), where, reason: JOB_REFUSED, message, retryable: false });
    await ledger.save(ctx).catch((err: Error) => this.log(`cannot write the ledger entry of ${where}: ${err.message}`));
    return { refused: message };
  }
}

const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;

/** Why a barrier's `planned` is not one its phase could have made (the phase's stages, each with counts), or undefined. */
function plannedProblem(planned: Planned | undefined, stages: readonly string[]): string | undefined {
  if (planned === undefined) return stages.length ? 'it carries no planned units' : undefined;
  if (typeof planned !== 'object' || planned === null || Array.isArray(planned)) return `its planned units ${short(planned)} are not an object`;
  const named = Object.keys(planned);
  if (named.length !== stages.length || !named.every((s) => stages.includes(s)))
    return `its planned units name ${short(named)}, not its phase's stages ${short(stages)}`;
  for (const [stage, p] of Object.entries(planned))
    if (!count(p?.units) || !count(p?.skipped) || p.skipped > p.units) return `its planned units of ${stage} ${short(p)} are not counts`;
  return undefined;
}
