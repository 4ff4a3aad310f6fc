// sharp runs libvips on a thread pool, and libvips keeps one error buffer for the whole process.
// When images fail side by side, a failure can read another's message or find the buffer already
// cleared: in one batch here a truncated PNG was reported as "VipsJpeg: premature end of JPEG
// image" (its neighbour's fault), and of 440 truncated JPEGs decoded 64 at a time, 100 said only
// "Unknown error". So a failed operation is run again alone (one redo at a time in this thread,
// after its batch has settled), and that failure's own words are the ones reported. Failures are
// rare, so the redo costs little.

let alone: Promise<unknown> = Promise.resolve();

/** Runs `op` with no other redo running; its error (or, should it now pass, its result). */
function redoAlone<T>(op: () => Promise<T>): Promise<T | Error> {
  const next = alone.then(async () => {
    let last: Error | undefined;
    for (let i = 0; i < 3; i++) {
      try {
        return await op();
      } catch (err) {
        last = err as Error;
        if (!/^Unknown error$/.test(last.message)) break;
      }
    }
    return last!;
  });
  alone = next;
  return next;
}

/** Runs sharp operations side by side; each that fails is run again alone for its own message. */
export async function allWithOwnErrors<T>(ops: Array<() => Promise<T>>): Promise<Array<T | Error>> {
  const first = await Promise.all(ops.map((op) => op().catch((err: Error) => err)));
  return Promise.all(first.map((r, i) => (r instanceof Error ? redoAlone(ops[i]) : r)));
}

/** One sharp operation; a failure is its own, in libvips' words. */
export async function withOwnError<T>(op: () => Promise<T>): Promise<T> {
  const [r] = await allWithOwnErrors([op]);
  if (r instanceof Error) throw r;
  return r;
}
