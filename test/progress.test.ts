// Terminal progress: the bar's format (items, rate, ETA), the local runner under a real
// pseudo-terminal (`script`), and the distributed follower's bars redrawn below finished lines.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { QueueProgress } from '../src/runner/distributed/progress.ts';
import { formatBar } from '../src/runner/progress.ts';
import { demoConfigObject, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

test('a bar shows units, items, rate and ETA', () => {
  assert.equal(
    formatBar({ stage: 'embed', units: 4, done: 1, items: 50, seconds: 10 }, 8),
    '[embed   ] ##------ 1/4 units  50 items  5.0 items/s  ETA 0:30  0:10',
  );
  assert.equal(formatBar({ stage: 'mine', units: 2, done: 2, items: 0, seconds: 3725, active: 0 }, 4), '[mine    ] #### 2/2 units  0 items  1:02:05');
  assert.equal(
    formatBar({ stage: 'catalog', units: 3, done: 0, items: 0, seconds: 0, active: 2, failed: 1 }, 3),
    '[catalog ] --- 0/3 units  0 items  2 active  1 failed  0:00',
  );
});

test('the local runner on a pseudo-terminal draws a live bar per stage; in a log, plain lines', { timeout: 300_000 }, async (t) => {
  if (spawnSync('script', ['--version']).error) return t.skip('no script(1) here to make a pseudo-terminal');
  const root = tempDir('progress-tty');
  const file = writeConfigFile(root, demoConfigObject(await sampleSlice(), root));
  const cmd = `${process.execPath} --import tsx ${path.join(repoRoot, 'src/cli/main.ts')} run --config ${file}`;
  const env = { ...process.env, MEGAPAIRS_CACHE: path.join(root, 'cache') };
  const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: repoRoot, env, encoding: 'utf8' });
  assert.equal(tty.status, 0, tty.stdout + tty.stderr);
  assert.match(tty.stdout, /\r\x1b\[2K\[embed   \] #*-* \d\/3 units  \d+ items/);
  assert.match(tty.stdout, /\[catalog \] #{20} 3\/3 units  150 items  [\d.]+ items\/s  0:\d\d/);
  // Not a terminal: no escape codes, a finished line per stage.
  const log = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), 'run', '--config', file], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
  });
  assert.equal(log.status, 0, log.stderr);
  assert.doesNotMatch(log.stderr, /\x1b/);
  assert.match(log.stderr, /^\[embed   \] 3\/3 units  0 items  \(3 already complete\)/m);
});

test('the distributed follower on a terminal: bars for the stages under way, redrawn below the finished lines', () => {
  let screen = '';
  const tty = { write: (s: string) => ((screen += s), true) };
  const p = new QueueProgress(() => assert.fail('no plain lines on a terminal'), tty);
  const now = 100_000;
  const tally = (done: number, items: number) => ({ done, skipped: 0, items, failed: 0, first: now - 20_000, last: now });
  p.update(
    [
      { short: 'mine', counts: { completed: 1, active: 1, wait: 2 }, tally: tally(1, 80) },
      { short: 'annotate', counts: { wait: 4 } },
    ],
    new Map(),
    now,
  );
  assert.equal(
    screen,
    '[mine    ] #####--------------- 1/4 units  80 items  4.0 items/s  1 active  ETA 1:00  0:20\n[annotate] -------------------- 0/4 units  0 items  0:00\n',
  );
  screen = '';
  const report = { stage: 'mine', units: 4, skipped: 0, items: 300, failed: 0, seconds: 31.25 };
  p.update(
    [
      { short: 'mine', counts: { completed: 4 }, tally: tally(4, 300) },
      { short: 'annotate', counts: { wait: 3, active: 1 } },
    ],
    new Map([['mine', report]]),
    now,
  );
  // The two bars erased, the finished line written, the bar still under way drawn again.
  assert.equal(screen, '\x1b[2A\r\x1b[J[mine    ] 4/4 units  300 items  31.3s\n[annotate] -------------------- 0/4 units  0 items  1 active  0:00\n');
  screen = '';
  p.end();
  assert.equal(screen, '\x1b[1A\r\x1b[J');
});
