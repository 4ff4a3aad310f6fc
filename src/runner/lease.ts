// One writer per run: a local `run` (or `retry-failed`) holds a lease on its run name in its work
// storage, `runs/<name>.lease.json`: host, pid and a heartbeat renewed every few seconds. A second
// one finds it held, says by whom, and stops (exit 2) before it touches anything. A lease is
// stale, and is taken over, when its heartbeat is older than LEASE_STALE_MS or when its pid is
// dead on this same host (a kill -9 frees the run at once for the next run on that machine).
//
// In a local folder the lease is created whole with a hard link, which fails if the name exists, so
// two runs starting together cannot both get it. On S3 it is written and read back after a pause: best effort (S3 has no exclusive create
// here), which catches every run that does not start within the same moment.
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { unkeyedLayout } from '../core/layout.ts';
import { LocalStorage } from '../storage/local.ts';
import type { Storage } from '../storage/storage.ts';

export const LEASE_HEARTBEAT_MS = 5_000;
export const LEASE_STALE_MS = 60_000;

export interface LeaseHolder {
  host: string;
  pid: number;
  command: string;
  startedAt: string;
  heartbeat: string;
  token: string;
}

/** Another process holds the run: the CLI prints the message and exits 2. */
export class LeaseHeldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseHeldError';
  }
}

export interface Lease {
  release(): Promise<void>;
}

const leaseKey = unkeyedLayout.runLease;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, another user's
  }
}

/** Why the holder no longer holds it, or undefined while it does. */
function staleness(h: LeaseHolder, now = Date.now()): string | undefined {
  const age = now - Date.parse(h.heartbeat);
  if (!(age < LEASE_STALE_MS)) return `its heartbeat is ${Math.round(age / 1000)}s old`;
  // Our own pid: a restarted container that got the same pid as the run it replaces.
  if (h.host === hostname() && (h.pid === process.pid || !alive(h.pid))) return `pid ${h.pid} is no longer running on ${h.host}`;
  return undefined;
}

const describe = (h: LeaseHolder) =>
  `${h.command} (pid ${h.pid} on ${h.host}, since ${h.startedAt}, heartbeat ${Math.round((Date.now() - Date.parse(h.heartbeat)) / 1000)}s ago)`;

const held = (run: string, root: string, h: LeaseHolder) =>
  new LeaseHeldError(`run ${run} in ${root} is held by ${describe(h)}; wait for it, or stop it first`);

function parse(text: string | undefined): LeaseHolder | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as LeaseHolder;
  } catch {
    return undefined; // a torn or foreign file: treated as stale
  }
}

/** Creates the file, whole, only if absent (a hard link fails if the name exists); false when it exists. */
async function createExclusive(file: string, text: string, token: string): Promise<boolean> {
  const tmp = `${file}.new-${token}`;
  await writeFile(tmp, text);
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return createWithFlag(file, text); // no hard links here
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** O_EXCL, for filesystems without hard links: a reader may see the file empty for a moment (read as stale). */
async function createWithFlag(file: string, text: string): Promise<boolean> {
  try {
    await writeFile(file, text, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

const readText = (file: string) => readFile(file, 'utf8').catch(() => undefined);

/** Takes the lease in a local folder: an exclusive create; a stale one is moved aside first (rename is atomic). */
async function acquireLocal(file: string, mine: LeaseHolder, run: string, work: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  for (let tries = 0; tries < 5; tries++) {
    if (await createExclusive(file, JSON.stringify(mine), mine.token)) return;
    const holder = parse(await readText(file));
    if (holder && !staleness(holder)) throw held(run, work, holder);
    const aside = `${file}.stale-${mine.token}`;
    try {
      await rename(file, aside);
    } catch {
      continue; // another process moved it first
    }
    // Moved aside what was read as stale; if a fresh lease took its place meanwhile, put it back.
    const moved = parse(await readText(aside));
    if (moved && moved.token !== holder?.token && !staleness(moved)) await link(aside, file).catch(() => {});
    await unlink(aside).catch(() => {});
  }
  throw new LeaseHeldError(`run ${run} in ${work}: could not take its lease (${file}); another run keeps taking it`);
}

const readHolder = async (work: Storage, key: string) => parse((await work.exists(key)) ? (await work.read(key)).toString('utf8') : undefined);

/** Throws LeaseHeldError when a live process holds the run (a distributed `run` checks this before it enqueues). */
export async function refuseIfHeld(work: Storage, run: string): Promise<void> {
  const holder = await readHolder(work, leaseKey(run));
  if (holder && !staleness(holder)) throw held(run, work.root, holder);
}

/** Takes the lease in any storage: write, pause, read back (best effort, see above). */
async function acquireStored(work: Storage, key: string, mine: LeaseHolder, run: string): Promise<void> {
  await refuseIfHeld(work, run);
  await work.write(key, JSON.stringify(mine));
  await new Promise((r) => setTimeout(r, 1000));
  const now = parse((await work.read(key)).toString('utf8'));
  if (now?.token !== mine.token) throw new LeaseHeldError(`run ${run} in ${work.root} was taken at the same moment by ${now ? describe(now) : 'another run'}`);
}

/** Holds the run's lease until release(); throws LeaseHeldError when another live process holds it. */
export async function acquireRunLease(work: Storage, run: string, command: string): Promise<Lease> {
  const key = leaseKey(run);
  const startedAt = new Date().toISOString();
  const mine: LeaseHolder = { host: hostname(), pid: process.pid, command, startedAt, heartbeat: startedAt, token: randomUUID() };
  const local = work instanceof LocalStorage ? work.uri(key) : undefined;
  if (local) await acquireLocal(local, mine, run, work.root);
  else await acquireStored(work, key, mine, run);
  // The heartbeat rewrites the whole file (atomically: write() replaces it), keeping the token,
  // only while the lease is still this run's: a run paused past LEASE_STALE_MS (a suspended
  // laptop, a stalled mount) may have been taken over, and must not write over its new holder.
  const beat = async () => {
    if ((await readHolder(work, key))?.token !== mine.token) return;
    await work.write(key, JSON.stringify({ ...mine, heartbeat: new Date().toISOString() }));
  };
  const timer = setInterval(() => void beat().catch(() => {}), LEASE_HEARTBEAT_MS);
  timer.unref();
  return {
    release: async () => {
      clearInterval(timer);
      if ((await readHolder(work, key))?.token === mine.token) await work.delete(key);
    },
  };
}
