// The run report: `megapairs run` writes report.html beside summary.json; the page, with every
// summary section present and with none, renders in headless Chromium without console errors or
// network requests, with its charts and thumbnails; a screenshot is saved under test-results/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { readParquet } from '../src/artifacts/parquet.ts';
import { loadConfig } from '../src/config/load.ts';
import { writeRunReport } from '../src/report/write-report.ts';
import type { Histogram, ReportSummary } from '../src/report/sections.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import type { RunSummary } from '../src/report/run-summary.ts';
import type { StageContext } from '../src/core/stage.ts';
import { demoConfigObject, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';
import { launchChromium, noBrowser } from './report-browser.ts';

const screenshots = path.join(repoRoot, 'test-results');
let ctx: StageContext;
let summary: RunSummary;
let browser: Browser | undefined;

before(async () => {
  const root = tempDir('report');
  const configFile = writeConfigFile(root, demoConfigObject(await sampleSlice(), root));
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts'), 'run', '--config', configFile], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  ctx = createContext(loadConfig(configFile));
  await resolveRun(ctx);
  summary = JSON.parse(readFileSync(path.join(root, 'output', 'summary.json'), 'utf8')) as RunSummary;
  if (!noBrowser) browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

function histogramOf(values: number[], lo: number, hi: number, bins: number): Histogram {
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * bins)))]++;
  return { edges, counts };
}

/** summary.json with every optional section the other stages add; the mining figures come from the run's pairs. */
async function fullSummary(): Promise<ReportSummary> {
  const pairs = (
    await Promise.all([0, 1, 2].map((n) => readParquet<{ relation: string; similarity: number; t_id: unknown }>(ctx.work, ctx.layout.pairsPart(n))))
  ).flat();
  const spaces = Object.fromEntries(
    Object.keys(summary.pairs).map((space) => {
      const sims = pairs.filter((p) => p.relation === space).map((p) => p.similarity);
      return [
        space,
        {
          neighbour_similarity: histogramOf([...sims, ...sims.map((s) => s - 0.3), 0.97, 0.99], 0, 1, 40),
          target_similarity: histogramOf(sims, 0.8, 0.96, 16),
          pairs: sims.length,
          near_duplicate_clusters: 0,
          recall: { k: 20, queries: 100, at_k: 0.987, in_band: 0.993, at_k_by_id: 0.981, in_band_by_id: 0.99, in_band_neighbours: 1200 },
        },
      ];
    }),
  );
  const inDegree = new Map<string, number>();
  for (const p of pairs) inDegree.set(String(p.t_id), (inDegree.get(String(p.t_id)) ?? 0) + 1);
  const degrees = [...inDegree.values()];
  return {
    ...summary,
    stages: Object.fromEntries(
      Object.entries(summary.seconds).map(([stage, s]) => [
        stage,
        { key: `${stage}-0123abcd`, status: 'computed', reason: 'no artifact yet', units: 3, items: 150, failed: 0, seconds: s },
      ]),
    ),
    outcome: { exit_code: 0, complete: true, failure_share: { catalog: 0, embed: 0.0067 }, message: 'all units complete' },
    mining: {
      spaces,
      target_in_degree: {
        ...histogramOf(degrees, 1, Math.max(...degrees) + 1, Math.max(...degrees)),
        max: Math.max(...degrees),
        mean: pairs.length / degrees.length,
      },
      queries_without_pair: 12,
      duplicate_pairs_merged: 3,
      near_duplicate_clusters: 2,
      dropped: { over_target_cap: 5, reverse_of_kept: 0, near_duplicate_negatives: 7 },
    },
    annotation: {
      endpoints: { describe: { requests: 120, cached: 4, errors: { timeout: 1 } }, instruct: { requests: 118, cached: 4, errors: {} } },
      tokens: {
        'OpenGVLab/InternVL2-26B': { prompt: 190_000, completion: 12_000 },
        'meta-llama/Meta-Llama-3-8B-Instruct': { prompt: 150_000, completion: 9_000 },
      },
      cost_usd: 0.42,
      batches: {
        count: 2,
        adopted: 1,
        by_status: { completed: 1, expired: 1 },
        list: [
          {
            unit: 'part-00000',
            batch_id: 'batch_abc',
            file_id: 'file-1',
            step: 'describe',
            round: 1,
            model: 'OpenGVLab/InternVL2-26B',
            requests: 120,
            ours: 120,
            adopted: true,
            status: 'expired',
            transitions: [
              { status: 'validating', at: '2026-01-01T10:00:00.000Z' },
              { status: 'in_progress', at: '2026-01-01T10:00:05.000Z' },
              { status: 'expired', at: '2026-01-02T10:00:00.000Z' },
            ],
          },
          {
            unit: 'part-00000',
            batch_id: 'batch_def',
            file_id: 'file-2',
            step: 'describe',
            round: 1,
            model: 'OpenGVLab/InternVL2-26B',
            requests: 30,
            ours: 30,
            adopted: false,
            status: 'completed',
            transitions: [{ status: 'completed', at: '2026-01-02T11:00:00.000Z' }],
          },
        ],
      },
    },
    failures: { ...summary.failures, 'embed/undecodable_image': 1, 'annotate/malformed_description': 2 },
  };
}

/** Opens the page with every non-data request refused; returns what the page logged and asked for. */
async function open(file: string, shot: string) {
  const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url === pathToFileURL(file).href) return route.continue();
    requests.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  mkdirSync(screenshots, { recursive: true });
  const screenshot = path.join(screenshots, shot);
  await page.screenshot({ path: screenshot, fullPage: true });
  return { page, errors, requests, screenshot };
}

test('megapairs run writes a self-contained report.html beside summary.json', () => {
  const file = path.join(ctx.config.output, 'report.html');
  assert.ok(existsSync(path.join(ctx.config.output, 'summary.json')));
  const html = readFileSync(file, 'utf8');
  const fetches = html.match(/<script|<link|@import|url\(|https?:\/\//gi);
  assert.equal(fetches, null, `nothing to fetch, found ${fetches}`);
  assert.match(html, /data-chart="pairs"/);
  assert.ok((html.match(/<img class="thumb"[^>]+src="data:image\/jpeg;base64,/g) ?? []).length >= 9, 'three thumbnails per sample triple');
  // The run measured recall and histograms (the mining section), but it paid for no tokens (the
  // template annotator): the page says so rather than drawing zeros.
  assert.doesNotMatch(html, /similarity histograms and recall: not measured in this run/);
  assert.match(html, /token totals: not measured in this run/);
});

test('the report with every summary section renders in Chromium: charts, thumbnails, no errors', { skip: noBrowser }, async () => {
  const full = await fullSummary();
  await writeRunReport(ctx, full);
  const file = path.join(ctx.config.output, 'report.html');
  const { page, errors, requests, screenshot } = await open(file, 'report-full.png');
  assert.deepEqual(errors, [], 'no console errors');
  assert.deepEqual(requests, [], 'no requests beyond the page itself');
  const charts = await page.$$eval('svg.chart', (els) =>
    els.map((e) => ({ name: e.getAttribute('data-chart'), bars: e.querySelectorAll('rect.bar').length, w: e.getBoundingClientRect().width })),
  );
  const names = charts.map((c) => c.name);
  for (const space of Object.keys(summary.pairs)) {
    assert.ok(names.includes(`neighbour-similarity-${space}`), `neighbour histogram of ${space}`);
    assert.ok(names.includes(`target-similarity-${space}`), `target histogram of ${space}`);
  }
  for (const n of ['pairs', 'stage-seconds', 'failures', 'target-in-degree']) assert.ok(names.includes(n), `chart ${n}`);
  assert.ok(
    charts.every((c) => c.bars > 0 && c.w > 100),
    'every chart is drawn',
  );
  const thumbs = await page.$$eval('img.thumb', (els) =>
    els.map((e) => ({ role: e.getAttribute('data-role'), w: (e as HTMLImageElement).naturalWidth, done: (e as HTMLImageElement).complete })),
  );
  assert.ok(thumbs.length >= 9);
  assert.ok(
    thumbs.every((t) => t.done && t.w > 0),
    'every thumbnail decodes',
  );
  assert.deepEqual(new Set(thumbs.map((t) => t.role)), new Set(['query', 'target', 'negative']));
  const relations = await page.$$eval('article.triple', (els) => [...new Set(els.map((e) => e.getAttribute('data-relation')))].sort());
  assert.deepEqual(relations, Object.keys(summary.pairs).sort(), 'the gallery shows every relation');
  const text = await page.innerText('body');
  assert.match(text, /\$0\.42/);
  assert.match(text, /recall@k/);
  assert.match(text, /OpenGVLab\/InternVL2-26B/);
  assert.match(text, /malformed_description/);
  assert.match(text, /batches: 2 \(completed 1, expired 1; 1 adopted from an earlier run\)/);
  assert.match(text, /batch_abc/);
  assert.match(text, /validating 10:00:00 → in_progress 10:00:05 → expired 10:00:00/);
  assert.doesNotMatch(text, /not measured in this run/, 'every section measured');
  assert.ok(readFileSync(screenshot).length > 10_000, `screenshot at ${screenshot}`);
  await page.close();
});

test('the report of a run that measured only the basics says so per section, in Chromium', { skip: noBrowser }, async () => {
  const { images, embeddings, pairs, triples, failures } = summary;
  await writeRunReport(ctx, { images, embeddings, pairs, triples, failures } as RunSummary);
  const { page, errors, requests } = await open(path.join(ctx.config.output, 'report.html'), 'report-basic.png');
  assert.deepEqual(errors, []);
  assert.deepEqual(requests, []);
  for (const id of ['stages', 'mining', 'annotation']) assert.match(await page.innerText(`#${id}`), /not measured in this run/, `#${id}`);
  assert.ok((await page.$$('svg.chart[data-chart="pairs"]')).length === 1);
  await page.close();
});
