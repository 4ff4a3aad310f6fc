// Images' bytes from the catalog's record of where they are: ranged reads of tar members. A batch
// of catalog rows is mostly consecutive members of one tar, so readImageBatch asks for each run of
// nearby members in one ranged read and slices it: one GET per run on S3 instead of one per image.
import { UnsafeKeyError } from '../storage/safe-key.ts';
import { NotFoundError, ObjectChangedError, type Storage } from '../storage/storage.ts';

export interface ImageLocation {
  tar: string;
  offset: number;
  length: number;
  /**
   * The tar's version the catalog read (ObjectVersion): a tar with other bytes under its name is
   * refused (ObjectChangedError), so the unit fails and is retried, rather than decoding bytes at
   * another tar's offsets as images of its own.
   */
  version?: string;
}

export function readImageBytes(input: Storage, loc: ImageLocation): Promise<Buffer> {
  return input.readRange(loc.tar, loc.offset, loc.length, loc.version || undefined);
}

export interface BatchReadOptions {
  /** Members this many bytes apart or less are read together (the gap is read and dropped). */
  maxGap?: number;
  /** No single read spans more than this many bytes. */
  maxSpan?: number;
}

interface Run {
  tar: string;
  version?: string;
  start: number;
  end: number;
  members: number[];
}

/** Groups locations into runs of nearby members of the same tar, in offset order. */
function runsOf(locs: readonly ImageLocation[], maxGap: number, maxSpan: number): Run[] {
  const order = locs.map((_, i) => i).sort((a, b) => (locs[a].tar < locs[b].tar ? -1 : locs[a].tar > locs[b].tar ? 1 : locs[a].offset - locs[b].offset));
  const runs: Run[] = [];
  for (const i of order) {
    const { tar, offset, length } = locs[i];
    const last = runs[runs.length - 1];
    if (
      last &&
      last.tar === tar &&
      last.version === locs[i].version &&
      offset >= last.start &&
      offset - last.end <= maxGap &&
      Math.max(last.end, offset + length) - last.start <= maxSpan
    ) {
      last.end = Math.max(last.end, offset + length);
      last.members.push(i);
    } else {
      runs.push({ tar, version: locs[i].version, start: offset, end: offset + length, members: [i] });
    }
  }
  return runs;
}

/**
 * Every location's bytes, or the error reading it, in the order given. A run whose read fails is
 * read again member by member, so one bad member (or a tar cut short) fails only what it must;
 * a tar that is gone or changed fails the run's members at once.
 */
export async function readImageBatch(input: Storage, locs: readonly ImageLocation[], opts: BatchReadOptions = {}): Promise<Array<Buffer | Error>> {
  const out = new Array<Buffer | Error>(locs.length);
  const single = async (i: number) => {
    out[i] = await readImageBytes(input, locs[i]).catch((err: Error) => err);
  };
  await Promise.all(
    runsOf(locs, opts.maxGap ?? 64 * 1024, opts.maxSpan ?? 16 * 1024 * 1024).map(async (run) => {
      if (run.members.length === 1) return single(run.members[0]);
      try {
        const bytes = await input.readRange(run.tar, run.start, run.end - run.start, run.version || undefined);
        for (const i of run.members) out[i] = bytes.subarray(locs[i].offset - run.start, locs[i].offset - run.start + locs[i].length);
      } catch (err) {
        // A fault of the whole object holds for each member: reading them one by one would only repeat it.
        if (err instanceof ObjectChangedError || err instanceof NotFoundError || err instanceof UnsafeKeyError) for (const i of run.members) out[i] = err;
        else await Promise.all(run.members.map(single));
      }
    }),
  );
  return out;
}
