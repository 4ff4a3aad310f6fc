// Inline SVG charts for the run report: no scripts, no fonts, no network. Each chart carries
// class="chart" and a data-chart name, so a reader (and the browser test) can find it.
import type { Histogram } from './sections.ts';

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const W = 480;
const H = 160;
const PAD = { left: 44, right: 8, top: 8, bottom: 24 };

const fmt = (x: number) => (Math.abs(x) >= 1000 ? x.toLocaleString('en') : String(Math.round(x * 1000) / 1000));

/** A histogram as bars over its edges; `band` shades the (low, high) interval. */
export function histogramSvg(name: string, h: Histogram, opts: { band?: [number, number]; title: string }): string {
  const n = h.counts.length;
  if (!n || h.edges.length !== n + 1) return `<p class="missing">${escapeHtml(opts.title)}: malformed histogram</p>`;
  const lo = h.edges[0];
  const hi = h.edges[n];
  const max = Math.max(1, ...h.counts);
  const pw = W - PAD.left - PAD.right;
  const ph = H - PAD.top - PAD.bottom;
  const x = (v: number) => PAD.left + ((v - lo) / (hi - lo || 1)) * pw;
  const y = (c: number) => PAD.top + ph - (c / max) * ph;
  const parts: string[] = [];
  if (opts.band) {
    const [a, b] = opts.band.map((v) => Math.min(Math.max(v, lo), hi));
    parts.push(`<rect class="band" x="${x(a).toFixed(1)}" y="${PAD.top}" width="${Math.max(0, x(b) - x(a)).toFixed(1)}" height="${ph}"/>`);
  }
  h.counts.forEach((c, i) => {
    const x0 = x(h.edges[i]);
    const x1 = x(h.edges[i + 1]);
    parts.push(
      `<rect class="bar" x="${x0.toFixed(1)}" y="${y(c).toFixed(1)}" width="${Math.max(0.5, x1 - x0 - 0.5).toFixed(1)}" height="${(PAD.top + ph - y(c)).toFixed(1)}"><title>[${fmt(h.edges[i])}, ${fmt(h.edges[i + 1])}): ${c}</title></rect>`,
    );
  });
  parts.push(axes(lo, hi, max, x));
  return svg(name, opts.title, parts.join(''));
}

/** Horizontal bars, one per entry, labelled with the name and value. */
export function barsSvg(name: string, entries: Array<[string, number]>, title: string): string {
  const rowH = 22;
  const labelW = 200;
  const height = Math.max(1, entries.length) * rowH + 4;
  const max = Math.max(1, ...entries.map(([, v]) => v));
  const bw = W - labelW - 70;
  const rows = entries.map(([label, v], i) => {
    const y = 2 + i * rowH;
    const w = (v / max) * bw;
    return (
      `<text class="label" x="${labelW - 6}" y="${y + 15}" text-anchor="end">${escapeHtml(label)}</text>` +
      `<rect class="bar" x="${labelW}" y="${y + 3}" width="${Math.max(w, v ? 1 : 0).toFixed(1)}" height="${rowH - 6}"><title>${escapeHtml(label)}: ${v}</title></rect>` +
      `<text class="value" x="${labelW + w + 4}" y="${y + 15}">${fmt(v)}</text>`
    );
  });
  return svg(name, title, rows.join(''), height);
}

function axes(lo: number, hi: number, max: number, x: (v: number) => number): string {
  const base = H - PAD.bottom;
  const ticks = [lo, (lo + hi) / 2, hi].map((v) => `<text class="tick" x="${x(v).toFixed(1)}" y="${base + 16}" text-anchor="middle">${fmt(v)}</text>`);
  return (
    `<line class="axis" x1="${PAD.left}" y1="${base}" x2="${W - PAD.right}" y2="${base}"/>` +
    `<line class="axis" x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${base}"/>` +
    `<text class="tick" x="${PAD.left - 4}" y="${PAD.top + 10}" text-anchor="end">${fmt(max)}</text>` +
    `<text class="tick" x="${PAD.left - 4}" y="${base}" text-anchor="end">0</text>` +
    ticks.join('')
  );
}

function svg(name: string, title: string, body: string, height = H): string {
  return `<figure><svg class="chart" data-chart="${escapeHtml(name)}" role="img" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}"><title>${escapeHtml(title)}</title>${body}</svg><figcaption>${escapeHtml(title)}</figcaption></figure>`;
}
