// The run report as one self-contained HTML page: inline CSS and SVG, thumbnails as data: URIs,
// no scripts, fonts or links to fetch, so it opens anywhere, offline. Every section draws what
// summary.json has and says "not measured in this run" where the run did not measure it.
import { barsSvg, escapeHtml as esc, histogramSvg } from './charts.ts';
import type { GalleryImage, GalleryTriple } from './gallery.ts';
import type { ReportSummary } from './sections.ts';

export interface ReportInput {
  runName: string;
  summary: ReportSummary;
  band: [number, number];
  gallery: GalleryTriple[];
  generatedAt: Date;
}

const NOT_MEASURED = '<p class="missing">not measured in this run</p>';
const num = (n: number | undefined) => (n === undefined ? '–' : n.toLocaleString('en'));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

const table = (head: string[], rows: Array<Array<string | number | undefined>>, name: string) =>
  `<table data-table="${name}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${typeof c === 'number' ? num(c) : esc(c ?? '–')}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;

function counts(s: ReportSummary): string {
  const pairs = s.pairs ? sum(Object.values(s.pairs)) : undefined;
  const cells: Array<[string, number | undefined]> = [
    ['images catalogued', s.images?.catalogued],
    ['refused at catalog', s.images?.refused],
    ['pairs', pairs],
    ['triples', s.triples],
    ['failures', s.failures ? sum(Object.values(s.failures)) : undefined],
  ];
  const tiles = cells.map(([label, v]) => `<div class="tile"><div class="n">${num(v)}</div><div>${esc(label)}</div></div>`).join('');
  const emb = s.embeddings
    ? `<p>embeddings: ${Object.entries(s.embeddings)
        .map(([k, v]) => `${esc(k)} ${num(v)}`)
        .join(', ')}</p>`
    : '';
  const outcome = s.outcome
    ? `<p class="outcome ${s.outcome.complete ? 'ok' : 'bad'}">exit ${s.outcome.exit_code}: ${s.outcome.complete ? 'complete' : 'incomplete'}${s.outcome.message ? ` — ${esc(s.outcome.message)}` : ''}</p>`
    : '';
  return `<section id="counts"><h2>Counts</h2>${outcome}<div class="tiles">${tiles}</div>${emb}</section>`;
}

function stages(s: ReportSummary): string {
  let body: string;
  if (s.stages && Object.keys(s.stages).length) {
    const rows = Object.entries(s.stages).map(([name, st]) => [
      name,
      st.status,
      st.units,
      st.items,
      st.failed,
      st.seconds === undefined ? undefined : st.seconds.toFixed(2),
      st.items !== undefined && st.seconds ? (st.items / st.seconds).toFixed(1) : undefined,
      st.reason,
    ]);
    body =
      table(['stage', 'status', 'units', 'items', 'failed', 'seconds', 'items/s', 'why'], rows, 'stages') +
      barsSvg(
        'stage-seconds',
        Object.entries(s.stages).map(([k, v]) => [k, v.seconds ?? 0]),
        'wall time per stage (s)',
      );
  } else if (s.seconds && Object.keys(s.seconds).length) {
    body =
      table(
        ['stage', 'seconds'],
        Object.entries(s.seconds).map(([k, v]) => [k, v.toFixed(2)]),
        'stages',
      ) +
      barsSvg('stage-seconds', Object.entries(s.seconds), 'wall time per stage (s)') +
      '<p class="missing">items and throughput per stage: not measured in this run</p>';
  } else body = NOT_MEASURED;
  return `<section id="stages"><h2>Stages: time and throughput</h2>${body}</section>`;
}

function failures(s: ReportSummary): string {
  let body: string;
  if (!s.failures) body = NOT_MEASURED;
  else if (!Object.keys(s.failures).length) body = '<p>no failures: every item reached the output</p>';
  else {
    const rows = Object.entries(s.failures)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => {
        const [stage, ...reason] = k.split('/');
        return [stage, reason.join('/'), v];
      });
    body =
      table(['stage', 'reason', 'items'], rows, 'failures') +
      barsSvg(
        'failures',
        rows.map((r) => [`${r[0]}/${r[1]}`, r[2] as number]),
        'failures by stage and reason',
      );
  }
  const share = s.outcome?.failure_share;
  if (share && Object.keys(share).length)
    body += table(
      ['stage', 'share of its items failed'],
      Object.entries(share).map(([k, v]) => [k, `${(v * 100).toFixed(2)}%`]),
      'failure-share',
    );
  return `<section id="failures"><h2>Failures by stage and reason</h2>${body}</section>`;
}

function pairs(s: ReportSummary): string {
  const body = s.pairs ? barsSvg('pairs', Object.entries(s.pairs), 'pairs per relation') : NOT_MEASURED;
  return `<section id="pairs"><h2>Pairs per relation</h2>${body}</section>`;
}

function mining(s: ReportSummary, band: [number, number]): string {
  const spaces = s.mining?.spaces;
  let body = '';
  if (spaces && Object.keys(spaces).length) {
    for (const [space, m] of Object.entries(spaces)) {
      const charts = [
        m.neighbour_similarity
          ? histogramSvg(`neighbour-similarity-${space}`, m.neighbour_similarity, { band, title: `${space}: similarity of retrieved neighbours (band shaded)` })
          : `<p class="missing">${esc(space)} neighbour similarity: not measured in this run</p>`,
        m.target_similarity
          ? histogramSvg(`target-similarity-${space}`, m.target_similarity, { band, title: `${space}: similarity of chosen targets` })
          : `<p class="missing">${esc(space)} target similarity: not measured in this run</p>`,
      ];
      body += `<h3>${esc(space)}${m.pairs === undefined ? '' : ` — ${num(m.pairs)} pairs`}</h3><div class="charts">${charts.join('')}</div>`;
    }
    const recall = Object.entries(spaces).filter(([, m]) => m.recall);
    body += '<h3>Recall of the index</h3>';
    body += recall.length
      ? table(
          ['space', 'k', 'queries checked', 'recall@k', 'recall in band', 'recall@k by id', 'in band by id'],
          recall.map(([space, m]) => {
            const r = m.recall!;
            return [space, r.k, r.queries, r.at_k.toFixed(4), r.in_band.toFixed(4), r.at_k_by_id.toFixed(4), r.in_band_by_id.toFixed(4)];
          }),
          'recall',
        )
      : NOT_MEASURED;
  } else body = `<p class="missing">similarity histograms and recall: not measured in this run</p>`;
  const deg = s.mining?.target_in_degree;
  body += '<h3>Target in-degree</h3>';
  body += deg
    ? `<p>how many pairs share one target: max ${num(deg.max)}, mean ${deg.mean.toFixed(2)}</p>` +
      histogramSvg('target-in-degree', deg, { title: 'pairs per target image' })
    : NOT_MEASURED;
  const extra: Array<[string, number | undefined]> = [
    ['queries without a pair', s.mining?.queries_without_pair],
    ['duplicate pairs merged', s.mining?.duplicate_pairs_merged],
    ['near-duplicate clusters', s.mining?.near_duplicate_clusters],
  ];
  const known = extra.filter(([, v]) => v !== undefined);
  if (known.length) body += `<p>${known.map(([k, v]) => `${esc(k)}: ${num(v)}`).join(' · ')}</p>`;
  return `<section id="mining"><h2>Mining: similarity, recall, in-degree</h2>${body}</section>`;
}

function annotation(s: ReportSummary): string {
  const a = s.annotation;
  let body = '';
  if (a?.tokens && Object.keys(a.tokens).length) {
    const rows = Object.entries(a.tokens).map(([model, t]) => [model, t.prompt, t.completion, t.prompt + t.completion]);
    const all = Object.values(a.tokens);
    rows.push(['total', sum(all.map((t) => t.prompt)), sum(all.map((t) => t.completion)), sum(all.map((t) => t.prompt + t.completion))]);
    body += table(['model', 'prompt tokens', 'completion tokens', 'total'], rows, 'tokens');
  } else body += '<p class="missing">token totals: not measured in this run</p>';
  body +=
    a?.cost_usd !== undefined ? `<p class="cost">cost: $${a.cost_usd.toFixed(2)}</p>` : '<p class="missing">cost: not measured in this run (no prices set)</p>';
  if (a?.endpoints && Object.keys(a.endpoints).length) {
    body += table(
      ['endpoint', 'requests', 'from cache', 'errors'],
      Object.entries(a.endpoints).map(([name, e]) => [
        name,
        e.requests,
        e.cached,
        Object.entries(e.errors)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none',
      ]),
      'endpoints',
    );
  }
  if (a?.batches?.count) {
    // Sent by batch: each batch with its unit, round, state and when it entered each state.
    const b = a.batches;
    body += `<p>batches: ${num(b.count)} (${Object.entries(b.by_status)
      .map(([status, n]) => `${esc(status)} ${num(n)}`)
      .join(', ')}${b.adopted ? `; ${num(b.adopted)} adopted from an earlier run` : ''})</p>`;
    body += table(
      ['batch', 'unit', 'round', 'step', 'model', 'requests', 'status', 'states'],
      b.list.map((x) => [
        x.batch_id ?? x.file_id,
        x.unit,
        x.round,
        x.step,
        x.model,
        x.ours === x.requests ? x.requests : `${x.ours} of ${x.requests}`,
        x.adopted ? `${x.status} (adopted)` : x.status,
        x.transitions.map((t) => `${t.status} ${t.at.slice(11, 19)}`).join(' → '),
      ]),
      'batches',
    );
  }
  return `<section id="annotation"><h2>Annotation: tokens and cost</h2>${body}</section>`;
}

function figure(img: GalleryImage | undefined, role: string): string {
  if (!img) return `<figure class="thumb-box"><div class="noimg">no ${role}</div><figcaption>${role}</figcaption></figure>`;
  const pic = img.src
    ? `<img class="thumb" data-role="${role}" src="${img.src}" alt="${esc(img.caption)}" title="${esc(img.caption)}">`
    : `<div class="noimg">unreadable: ${esc(img.error ?? '')}</div>`;
  return `<figure class="thumb-box">${pic}<figcaption>${role}<br><code>${esc(img.name)}</code></figcaption></figure>`;
}

function gallery(items: GalleryTriple[]): string {
  if (!items.length) return '<section id="gallery"><h2>Sample triples</h2><p class="missing">no triples to show</p></section>';
  const cards = items.map(
    (t) =>
      `<article class="triple" data-relation="${esc(t.relation)}"><div class="imgs">${figure(t.query, 'query')}${figure(t.target, 'target')}${figure(t.negative, 'negative')}</div>` +
      `<div class="text"><p class="rel">${esc(t.relation)} · similarity ${t.similarity.toFixed(3)}</p><ol>${t.instructions.map((i) => `<li>${esc(i)}</li>`).join('')}</ol>` +
      `<details><summary>description</summary><p>${esc(t.description)}</p></details></div></article>`,
  );
  return `<section id="gallery"><h2>Sample triples</h2>${cards.join('')}</section>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:16px 24px;color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;border-bottom:1px solid #d8dde6;padding-bottom:4px;margin-top:28px}h3{font-size:14px;margin:14px 0 6px}
.tiles{display:flex;gap:12px;flex-wrap:wrap}.tile{background:#fff;border:1px solid #d8dde6;border-radius:6px;padding:8px 14px;min-width:120px}.tile .n{font-size:20px;font-weight:600}
table{border-collapse:collapse;margin:8px 0;background:#fff}th,td{border:1px solid #d8dde6;padding:3px 8px;text-align:left}td:not(:first-child){font-variant-numeric:tabular-nums}
.missing{color:#7a8394;font-style:italic}.outcome.ok{color:#1b7f3a}.outcome.bad{color:#b3261e}
figure{margin:6px 0}figcaption{font-size:12px;color:#566072}.charts{display:flex;gap:16px;flex-wrap:wrap}
svg.chart{background:#fff;border:1px solid #e3e7ee}svg .bar{fill:#3d6fd8}svg .band{fill:#ffe9a8}svg .axis{stroke:#8b93a3}svg text{font-size:11px;fill:#39404d}
.triple{display:flex;gap:16px;background:#fff;border:1px solid #d8dde6;border-radius:6px;padding:10px;margin:10px 0}.imgs{display:flex;gap:8px}
.thumb-box{width:150px;text-align:center}.thumb{max-width:150px;max-height:150px;border:1px solid #e3e7ee}.noimg{width:150px;height:150px;display:flex;align-items:center;justify-content:center;background:#f0f2f5;color:#7a8394;font-size:12px}
.rel{font-weight:600;margin:0}.text ol{margin:6px 0;padding-left:20px}code{font-size:11px}`;

export function renderReport(r: ReportInput): string {
  const s = r.summary;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>megapairs run ${esc(r.runName)}</title><style>${CSS}</style></head>
<body><h1>megapairs run <code>${esc(r.runName)}</code></h1><p>report written ${esc(r.generatedAt.toISOString())} from summary.json and the run's artifacts</p>
${counts(s)}${stages(s)}${failures(s)}${pairs(s)}${mining(s, r.band)}${annotation(s)}${gallery(r.gallery)}
</body></html>
`;
}
