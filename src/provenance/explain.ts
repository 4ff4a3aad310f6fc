// Why a stage reuses or recomputes its artifacts, in words a person can act on: what changed in
// the values that decide it (compared with the last recorded run of the same name), or which
// stage before it changed.
import { differences } from '../core/digest.ts';
import type { StageStatus } from '../core/stage-report.ts';
import type { PartProvenance, StageProvenance } from './stage-keys.ts';

export function stageStatus(units: number, skipped: number): StageStatus {
  if (units === 0) return 'not needed';
  if (skipped === units) return 'reused';
  return skipped > 0 ? 'partly reused' : 'computed';
}

/** What changed between the recorded provenance and this one ([] when nothing did). */
export function changesSince(previous: StageProvenance | undefined, now: StageProvenance): string[] {
  if (!previous) return [];
  if (previous.key === now.key) return [];
  const changed = differences(previous.decidedBy, now.decidedBy);
  // A stage keyed by part says which parts came, went or changed; the stage it reads changed with them.
  if (previous.parts && now.parts) changed.push(...partChanges(previous.parts, now.parts, Object.keys(now.after)));
  else for (const [stage, key] of Object.entries(now.after)) if (previous.after[stage] !== key) changed.push(`${stage} changed`);
  return changed.length ? changed : ['the artifact format changed'];
}

/** Parts added, removed, and each changed part with what changed in it (its shard's size, the part it reads). */
function partChanges(previous: Record<string, PartProvenance>, now: Record<string, PartProvenance>, reads: string[]): string[] {
  const list = (units: string[]) => (units.length > 4 ? `${units.slice(0, 4).join(', ')}, ...` : units.join(', '));
  const added = Object.keys(now).filter((u) => !previous[u]);
  const removed = Object.keys(previous).filter((u) => !now[u]);
  const out: string[] = [];
  if (added.length) out.push(`${added.length} part${added.length === 1 ? '' : 's'} added (${list(added)})`);
  if (removed.length) out.push(`${removed.length} part${removed.length === 1 ? '' : 's'} removed (${list(removed)})`);
  for (const [unit, p] of Object.entries(now)) {
    const before = previous[unit];
    if (!before || before.key === p.key) continue;
    const own = differences(before.decidedBy, p.decidedBy);
    out.push(...(own.length ? own.map((d) => `${unit} ${d}`) : reads.map((stage) => `${unit}: ${stage} changed`)));
  }
  return out;
}

export function stageReason(status: StageStatus, previous: StageProvenance | undefined, now: StageProvenance, units: number, skipped: number): string {
  const changed = changesSince(previous, now);
  if (status === 'not needed') return 'no units to run under this config';
  if (status === 'reused') {
    if (!previous || previous.key === now.key) return `unchanged: every unit's artifact exists under key ${now.key}`;
    return `${changed.join('; ')}; artifacts for key ${now.key} exist from an earlier run`;
  }
  if (!previous) return `no artifacts under key ${now.key} (no earlier run of this name recorded)`;
  if (previous.key === now.key) return `resumed: ${units - skipped} of ${units} units were not complete`;
  return changed.join('; ');
}
