// A unit annotated pair by pair, for the backends that answer one pair at a time (template,
// openai): up to `inFlight` pairs at once, each with its own rng. A pair's AnnotationError is
// its result (the ledger's); any other error is the environment's: nothing more starts, and it
// is thrown once the pairs under way have settled, so the unit fails and is retried.
import { mapPool } from '../util/pool.ts';
import { AnnotationError, newTally, type Annotation, type PairAnnotator, type UnitAnnotations, type UnitIO, type UnitPair } from './annotator.ts';

export async function annotateEachPair(annotator: PairAnnotator, pairs: readonly UnitPair[], io: UnitIO, inFlight: number): Promise<UnitAnnotations> {
  const tally = newTally();
  let environmentFault: Error | undefined;
  const results = await mapPool(pairs, inFlight, async (pair): Promise<Annotation | AnnotationError | undefined> => {
    if (environmentFault) return undefined; // the unit fails: start nothing more
    try {
      const annotation = await annotator.annotate(pair, pair.rng, tally);
      io.pairDone();
      return annotation;
    } catch (err) {
      if (!(err instanceof AnnotationError)) {
        environmentFault ??= err as Error;
        return undefined;
      }
      io.pairDone();
      return err;
    }
  });
  if (environmentFault) throw environmentFault;
  return { results: results as Array<Annotation | AnnotationError>, tally };
}
