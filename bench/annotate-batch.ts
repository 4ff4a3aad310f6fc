// Annotation by batch against the test chat server's Batch API, with set delays per state: how long
// a request set takes end to end (upload, create, poll, read back, cache) against the time the
// server's batches alone take (validating + in_progress + finalizing, the lines answered meanwhile),
// with no faults, with 5% of lines failing with a 500 (a follow-up batch), and again from the cache.
// Usage: npx tsx bench/annotate-batch.ts [--requests 10000] [--per-file 2500] [--poll-ms 250]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BatchClient } from '../src/annotate/batch/client.ts';
import { type BatchRunReport, runBatches } from '../src/annotate/batch/driver.ts';
import { BatchJournal } from '../src/annotate/batch/journal.ts';
import { RequestCache } from '../src/annotate/request-cache.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { chatRequests } from '../test/annotate-batch-requests.ts';
import { FakeServer } from '../test/chat-server.ts';

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '10000' }, 'per-file': { type: 'string', default: '2500' }, 'poll-ms': { type: 'string', default: '250' } },
});
const REQUESTS = Number(values.requests);
const PER_FILE = Number(values['per-file']);
const POLL_MS = Number(values['poll-ms']);
const DELAYS = { validatingMs: 500, inProgressMs: 2000, finalizingMs: 500 };

async function measure(label: string, faults: { server_error?: number }, work: LocalStorage) {
  const server = new FakeServer({ faults, batch: { ...DELAYS, concurrency: 16 } });
  const url = await server.start();
  const t0 = Date.now();
  const { report } = await runBatches({
    requests: chatRequests(REQUESTS),
    cache: new RequestCache(work),
    journal: new BatchJournal(work),
    client: new BatchClient({ baseURL: url }),
    settings: { pollIntervalMs: POLL_MS, limits: { maxRequests: PER_FILE, maxBytes: 200 * 1024 * 1024 }, log: () => {} },
  });
  const wall = Date.now() - t0;
  await server.stop();
  // Time the server's batches took, validating to their end, round by round (by their own clock, in seconds).
  const rounds = batchRounds(report);
  return { label, wall, report, rounds, lines: server.batches.linesAnswered };
}

/** Per follow-up round: the longest batch, from its first to its last transition as this side saw them. */
function batchRounds(report: BatchRunReport): number[] {
  const byRound = new Map<number, number>();
  let round = 0;
  let last = '';
  for (const b of report.batches) {
    const seen = b.transitions.map((t) => Date.parse(t.seen));
    const first = b.transitions.find((t) => t.status === 'uploaded')?.seen ?? '';
    if (last && first > last) round++;
    last = b.transitions.at(-1)!.seen;
    byRound.set(round, Math.max(byRound.get(round) ?? 0, Math.max(...seen) - Math.min(...seen)));
  }
  return [...byRound.values()];
}

const dir = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-batch-'));
try {
  const work = new LocalStorage(dir);
  const runs = [
    await measure('no faults', {}, work),
    await measure('again: every reply cached', {}, work),
    await measure('5% of lines 500 (fresh work folder)', { server_error: 0.05 }, new LocalStorage(path.join(dir, 'faults'))),
  ];
  console.log(
    `${REQUESTS} requests, ${PER_FILE} a file, poll every ${POLL_MS} ms; server: validating ${DELAYS.validatingMs} ms, in_progress >= ${DELAYS.inProgressMs} ms, finalizing ${DELAYS.finalizingMs} ms`,
  );
  for (const r of runs) {
    const t = r.report.totals;
    console.log(
      `${r.label}: ${(r.wall / 1000).toFixed(1)} s; ${t.cached} cached, ${t.submitted} submitted (${t.resubmitted} again), ${t.files_uploaded} files, ${t.batches} batches, ${r.lines} lines answered, ${t.environment_failures} environment failures left; ` +
        `batches took ${r.rounds.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(' + ') || '-'} (upload to last state seen, per round)`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
