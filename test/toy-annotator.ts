// A third annotator backend, as a new one is written: this one module and its schema entry
// (`toySection`; in src it goes beside the others in config/schema.ts, and the backend gets its
// line in annotate/backends.ts). It works per unit, as a batch backend does: the first attempt of
// a unit writes the unit's requests as one batch file in the work storage and, with
// `unavailable_once`, fails as a batch service that is not ready (a fault of the environment);
// the next attempt finds the batch and answers every pair of the unit at once. A share of the
// pairs, drawn from each pair's rng, is refused (the pair's own fault, for the ledger).
import { z } from 'zod';
import { AnnotationError, newTally, type Annotation, type Annotator, type UnitAnnotations, type UnitIO, type UnitPair } from '../src/annotate/annotator.ts';
import type { AnnotatorBackend } from '../src/annotate/backend.ts';
import type { Config } from '../src/config/schema.ts';
import type { Storage } from '../src/storage/storage.ts';

export const toySection = z
  .strictObject({
    /** Starts every description: what decides the toy's annotations, with the seed. */
    word: z.string().min(1).default('toy'),
    /** Share of pairs refused. */
    refuse_share: z.number().min(0).max(1).default(0),
    /** A unit's first attempt writes its batch and fails: decides nothing. */
    unavailable_once: z.boolean().default(false),
  })
  .optional();

type ToyConfig = NonNullable<z.infer<typeof toySection>>;
const section = (config: Config) => (config.annotate as { toy?: ToyConfig }).toy ?? toySection.parse({})!;
const batchFile = (unit: string) => `toy-batches/${unit}.jsonl`;

export const toyBackend: AnnotatorBackend = {
  name: 'toy',
  decidedBy: (config) => ({ 'annotate.toy.word': section(config).word, 'annotate.toy.refuse_share': section(config).refuse_share }),
  preflight: async (config) => (section(config).word === 'forbidden' ? [{ key: 'annotate.toy.word', found: '"forbidden"', expected: 'another word' }] : []),
  estimate: (_config, { pairs }) => ({ requests: { batch_lines: pairs }, tokens: {}, costUsd: 0, unpriced: { models: [], key: 'annotate.toy' } }),
  cost: () => undefined,
  sendsRequests: false,
  open: async (config, { work }) => new ToyAnnotator(section(config), work),
};

/** What each unit was given, for the test: the pairs of one call. */
export const unitCalls: Array<{ unit: string; pairs: number }> = [];

class ToyAnnotator implements Annotator {
  readonly name = 'toy';
  constructor(
    private readonly cfg: ToyConfig,
    private readonly work: Storage,
  ) {}

  async annotateUnit(pairs: readonly UnitPair[], io: UnitIO): Promise<UnitAnnotations> {
    unitCalls.push({ unit: io.unit, pairs: pairs.length });
    const file = batchFile(io.unit);
    if (!(await this.work.exists(file))) {
      // Draws first, in a fixed order: the batch says what each pair will get.
      const lines = pairs.map((p) => JSON.stringify({ pair: p.pairId, refused: p.rng.next() < this.cfg.refuse_share, draw: p.rng.int(0, 999) }));
      await this.work.write(file, lines.join('\n'));
      if (this.cfg.unavailable_once) throw new Error(`toy batch service: batch ${file} submitted, not ready yet`);
    }
    const batch = new Map(
      (await this.work.read(file))
        .toString('utf8')
        .split('\n')
        .map((l) => JSON.parse(l) as { pair: string; refused: boolean; draw: number })
        .map((l) => [l.pair, l]),
    );
    const results = pairs.map((p): Annotation | AnnotationError => {
      const line = batch.get(p.pairId)!;
      io.pairDone();
      if (line.refused) return new AnnotationError('toy_refused', `pair ${p.pairId}: the toy batch refused it`);
      return {
        description: `${this.cfg.word}: ${p.query.caption} -> ${p.target.caption} (${line.draw})`,
        instructions: [`Make it ${p.target.caption}.`],
        annotator: this.name,
        model: 'toy-1',
        prompt_version: 'toy-v1',
        prompt_tokens: 0,
        completion_tokens: 0,
      };
    });
    return { results, tally: newTally() };
  }
}
