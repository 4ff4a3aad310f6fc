// The code's architecture, checked so it cannot drift: imports only go down the floors, no module
// imports itself back through others, the docs' stage table and distributed phases are the
// registry's, and a stage is added by one file and one line in the stage list.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { UnitLedger } from '../src/ledger/ledger.ts';
import { pipelineStages, stageFolders } from '../src/pipeline.ts';
import { createContext } from '../src/runner/context.ts';
import { phasesOf } from '../src/runner/distributed/phase-plan.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { prepareRetry } from '../src/runner/retry-local.ts';
import { PairCountStage } from './fixtures/pair-count-stage.ts';
import { demoConfig, repoRoot, sampleSlice, tempDir } from './helpers.ts';

const SRC = path.join(repoRoot, 'src');

/** The floors, bottom first: a module may import its own floor and those below, never one above. */
const FLOORS: readonly string[][] = [
  ['util', 'types', 'config/schema.ts', 'config/location.ts'],
  ['secrets', 'config'],
  ['storage', 'metrics'],
  ['core'],
  ['artifacts', 'ledger', 'corpus', 'knn'],
  ['encoders', 'annotate'],
  ['stages'],
  ['pipeline.ts'],
  ['provenance', 'report', 'preflight', 'plan', 'export', 'sample'],
  ['runner'],
  ['cli'],
];

/** A module's floor: the longest prefix of its path (under src/) that a floor names. */
function floorOf(rel: string): number {
  let best = -1;
  let longest = -1;
  FLOORS.forEach((names, floor) => {
    for (const n of names)
      if ((rel === n || rel.startsWith(`${n}/`)) && n.length > longest) {
        best = floor;
        longest = n.length;
      }
  });
  return best;
}

function sourceFiles(dir = SRC, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (/\.(ts|mjs)$/.test(e.name)) out.push(path.relative(SRC, p));
  }
  return out;
}

/** Each module's relative imports (static, re-exports, type-only and dynamic), as paths under src/. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const rel of sourceFiles()) {
    const text = readFileSync(path.join(SRC, rel), 'utf8');
    const targets = [...text.matchAll(/(?:^(?:import|export)\s[^'"]*?from\s+|^import\s+|import\()['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) =>
      path.relative(SRC, path.resolve(path.dirname(path.join(SRC, rel)), m[1])),
    );
    graph.set(rel, targets);
  }
  return graph;
}

test('every module sits on a floor and imports nothing above it', () => {
  const graph = importGraph();
  const unplaced = [...graph.keys()].filter((f) => floorOf(f) < 0);
  assert.deepEqual(unplaced, [], 'modules on no floor: add their folder to FLOORS');
  const upward: string[] = [];
  for (const [from, targets] of graph) for (const to of targets) if (floorOf(to) > floorOf(from)) upward.push(`${from} -> ${to}`);
  assert.deepEqual(upward, [], 'imports that run upward');
});

test('no import cycle, type-only imports included', () => {
  const graph = importGraph();
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const to of graph.get(f) ?? []) {
      if (state.get(to) === 'open') cycles.push([...stack.slice(stack.indexOf(to)), to].join(' > '));
      else if (!state.has(to) && graph.has(to)) visit(to);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

/** The rows of the first markdown table after a heading. */
function tableAfter(doc: string, heading: string): string[][] {
  const at = doc.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `docs/architecture.md has no "${heading}" section`);
  const lines = doc.slice(at).split('\n').slice(2);
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const l of lines.slice(start)) {
    if (!l.startsWith('|')) break;
    rows.push(
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows.slice(2); // the header and its rule
}

const names = (cell: string) => (cell === '—' ? [] : cell.split(',').map((c) => c.trim().replace(/`/g, '')));

test("the docs' stage table and distributed phases are the registry's", () => {
  const doc = readFileSync(path.join(repoRoot, 'docs', 'architecture.md'), 'utf8');
  const stages = pipelineStages();
  const rows = tableAfter(doc, '## Stages');
  assert.deepEqual(
    rows.map((r) => r[0].replace(/`/g, '')),
    stages.map((s) => s.name),
    'the stage table lists the registry, in order',
  );
  for (const [i, s] of stages.entries()) {
    const [, reads, folder, runsOn, chained] = rows[i];
    assert.deepEqual(names(reads), [...s.after], `${s.name}: reads`);
    assert.equal(folder.replace(/`/g, ''), s.folder ?? '—', `${s.name}: work folder`);
    assert.equal(runsOn.replace(/`/g, ''), s.needs ?? 'cpu', `${s.name}: runs on`);
    assert.equal(chained.replace(/`/g, ''), s.chain ?? '—', `${s.name}: chained`);
  }
  const at = doc.indexOf('\n## Distributed phases\n');
  assert.ok(at >= 0, 'docs/architecture.md has no "## Distributed phases" section');
  const block = doc.slice(at).match(/```text\n([\s\S]*?)```/);
  assert.ok(block, 'the phases section has a ```text block');
  const expected = phasesOf(stages).map((p) => `${p.barrier}: ${p.stages.map((s) => s.name).join(', ')}`);
  assert.deepEqual(block[1].trim().split('\n'), expected);
});

test('a stage added by one file and one line runs, resumes and retries like the others', async () => {
  const stages = [...pipelineStages(), new PairCountStage()]; // the one line
  const root = tempDir('toy-stage');
  const ctx = createContext(demoConfig(await sampleSlice(), root), undefined, stages);
  const quiet = new ProgressReporter(process.stderr, true);

  const first = await runLocal(ctx, { progress: quiet });
  const toy = first.find((r) => r.stage === 'pair_count')!;
  const pairs = first.find((r) => r.stage === 'select')!;
  assert.equal(toy.status, 'computed');
  assert.ok(toy.units > 0 && toy.items > 0, 'one unit per part, counting its pairs');
  assert.equal(stageFolders(stages).pair_count, 'pair-counts', 'its folder comes from the registry');
  const folder = path.join(root, 'work', ctx.layout.stageFolder('pair_count'));
  assert.equal(readdirSync(folder).length, toy.units, 'a file per part under its own key');
  assert.ok(pairs.items > 0);

  const again = await runLocal(ctx, { progress: quiet });
  assert.equal(again.find((r) => r.stage === 'pair_count')!.status, 'reused', 'a rerun skips it');

  // retry-failed forgets its marker like any stage's: a retryable item fault in part 0.
  const unit = ctx.stages.at(-1)!.unitId(0);
  const ledger = new UnitLedger('pair_count', unit);
  ledger.add('pair', 'part 0', 'toy_fault', 'a retryable fault', { retryable: true });
  await ledger.save(ctx);
  const retry = await prepareRetry(ctx);
  assert.deepEqual(retry.units, [`pair_count ${unit}`]);
  assert.deepEqual(
    retry.forgotten.map((f) => path.basename(f)),
    [`${unit}.json`],
  );
  assert.ok(!existsSync(path.join(folder, `${unit}.json`)));

  // The distributed phases take it too: it reads select, nothing of the last phase, so it runs beside it.
  const last = phasesOf(stages).at(-1)!;
  assert.equal(last.barrier, 'after.pair_count');
  assert.ok(last.stages.some((s) => s.name === 'pair_count'));
});
