// What a run's exit code says, decided from the artifacts on disk (never from what this process
// happened to do), so `megapairs run` and summary.json cannot disagree with the files:
//   0  complete, and no stage sent more than run.max_failure_share of its items to the ledger
//   3  complete, but over that share at some stage, or no triples at all
//   1  not complete: a unit failed (its entry is in the ledger, reason unit_failed)
// (2, bad config or preflight, is decided before any unit runs, by the CLI.)
import { JOB_REFUSED, type Failure } from '../ledger/ledger.ts';

export interface RunOutcome {
  exit_code: 0 | 1 | 3;
  complete: boolean;
  /** Per stage: ledgered items over the items the stage was given. */
  failure_share: Record<string, number>;
  message: string;
}

export interface OutcomeFacts {
  /** Every unit's final artifact is on disk (triples per part and the JSONL export). */
  artifactsComplete: boolean;
  failures: Failure[];
  /** Items each stage was given, for the share; stages not named use `catalogued`. */
  inputs: Record<string, number>;
  catalogued: number;
  triples: number;
  maxFailureShare: number;
}

export function decideOutcome(f: OutcomeFacts): RunOutcome {
  const unitFailures = f.failures.filter((x) => x.reason === 'unit_failed');
  const counts: Record<string, number> = {};
  // Shares are of items: a failed unit, or a queue job refused as not the run's, is none.
  for (const x of f.failures) if (x.reason !== 'unit_failed' && x.reason !== JOB_REFUSED) counts[x.stage] = (counts[x.stage] ?? 0) + 1;
  const failure_share: Record<string, number> = {};
  for (const [stage, n] of Object.entries(counts)) {
    const given = f.inputs[stage] ?? f.catalogued;
    failure_share[stage] = given > 0 ? Math.min(1, n / given) : 1;
  }
  const complete = f.artifactsComplete && unitFailures.length === 0;
  if (!complete) {
    const named = unitFailures.map((x) => `${x.stage} ${x.unit}`).join(', ');
    const message = named
      ? `incomplete: unit(s) failed: ${named}; fix the cause and rerun (or megapairs retry-failed)`
      : 'incomplete: not every unit has its artifact; rerun to resume';
    return { exit_code: 1, complete, failure_share, message };
  }
  const retryable = f.failures.filter((x) => x.retryable).length;
  const hint = retryable ? `; ${retryable} ledger entr${retryable === 1 ? 'y' : 'ies'} may pass on another try (megapairs retry-failed)` : '';
  const over = Object.entries(failure_share).filter(([, share]) => share > f.maxFailureShare);
  if (over.length) {
    const list = over.map(([stage, share]) => `${stage} ${(share * 100).toFixed(1)}%`).join(', ');
    return {
      exit_code: 3,
      complete,
      failure_share,
      message: `complete, but over run.max_failure_share (${f.maxFailureShare}) of items failed at: ${list} (see the ledger)${hint}`,
    };
  }
  if (f.triples === 0) return { exit_code: 3, complete, failure_share, message: `complete, but no triples were made${hint}` };
  return { exit_code: 0, complete, failure_share, message: `complete: ${f.triples} triples${hint}` };
}
