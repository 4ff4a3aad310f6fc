// The plan as `megapairs plan` prints it.
import type { Plan } from './plan.ts';

const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
export function formatBytes(b: number): string {
  let i = 0;
  while (b >= 1000 && i < units.length - 1) {
    b /= 1000;
    i++;
  }
  return `${b.toFixed(b >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}
const int = (x: number) => Math.round(x).toLocaleString('en');
const hours = (h: number) => h.toFixed(h < 1 ? 4 : 1);

export function formatPlan(p: Plan): string {
  const lines = [`plan for ${int(p.images)} images (${p.imagesSource}), about ${int(p.parts)} parts`, '', 'artifacts'];
  for (const a of p.artifacts) lines.push(`  ${a.name.padEnd(34)} ${formatBytes(a.bytes).padStart(9)}  ${a.where}`);
  lines.push(`  total: work ${formatBytes(p.totalBytes.work)}, output ${formatBytes(p.totalBytes.output)}`, '', `embedding (rates on ${p.providers})`);
  for (const e of p.embedding)
    lines.push(
      `  ${e.encoder.padEnd(16)} dim ${String(e.dim).padStart(4)}  ${e.perSecond.toFixed(0).padStart(7)}/s (${e.source})  ${hours(e.hours).padStart(9)} device-hours`,
    );
  const pre = p.preprocessing;
  const pace = p.pace;
  lines.push(
    `  preprocessing     ${pre.perCoreSecond.toFixed(1)}/s per core (measured; one decode, a resize per image encoder)  ${hours(pre.coreHours)} CPU-core-hours, ${hours(pre.hours)} hours on ${pre.threads} decode threads`,
    pace.sharedCores
      ? `  pace: inference and preprocessing share the CPU's cores: about ${hours(pace.hours)} hours (${hours(pace.deviceHours)} inference + ${hours(pace.preprocessHours)} preprocessing); ${pace.setBy === 'device' ? 'inference' : 'preprocessing'} takes the larger share`
      : `  pace: ${pace.setBy === 'device' ? `the device sets it: ${hours(pace.deviceHours)} device-hours for the three encoders against ${hours(pace.preprocessHours)} hours of preprocessing` : `preprocessing sets it: ${hours(pace.preprocessHours)} hours on ${pre.threads} decode threads against ${hours(pace.deviceHours)} device-hours for the three encoders`}, so about ${hours(pace.hours)} hours per device`,
  );
  lines.push('', `index: ${p.index.shards} shard(s) per encoder of up to ${int(p.index.shardSize)} images`);
  for (const s of p.index.perShard)
    lines.push(
      `  ${s.shards} x ${int(s.images)} images, loaded: ${Object.entries(s.memoryBytes)
        .map(([e, b]) => `${e} ${formatBytes(b)}`)
        .join(', ')}`,
    );
  lines.push(`  index.memory_budget_mb keeps ${formatBytes(p.index.budgetBytes)} of shards loaded per mining thread`);
  const a = p.annotation;
  lines.push('', `annotation (${a.annotator}): ${int(a.pairs)} pairs (${a.pairsSource})`);
  if (!Object.keys(a.requests).length) lines.push(`  no model requests: the ${a.annotator} annotator sends none`);
  else {
    lines.push(
      `  requests: ${Object.entries(a.requests)
        .map(([kind, n]) => `${kind} ${int(n)}`)
        .join(', ')}`,
    );
    for (const [model, t] of Object.entries(a.tokens))
      lines.push(`  ${model}: ${int(t.prompt)} prompt + ${int(t.completion)} completion tokens (${a.tokensSource})`);
    lines.push(a.costUsd !== undefined ? `  cost: $${a.costUsd.toFixed(2)}` : `  cost: not priced (set ${a.priceKey} for ${a.unpricedModels.join(', ')})`);
    for (const [mode, m] of Object.entries(a.modes ?? {})) {
      const cost = m.costUsd !== undefined ? `$${m.costUsd.toFixed(2)}` : 'not priced';
      lines.push(`  ${mode}${m.chosen ? ' (configured)' : ''}: ${cost}, about ${m.hours.toFixed(1)} h (${m.basis})`);
    }
  }
  return lines.join('\n') + '\n';
}
