// The offline template annotator over the demo corpus's captions: every instruction a sentence
// that names a difference between the two captions, never a word list, a dangling article, a
// stray letter or a "another image of it" that says nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writeAnnotation } from '../src/annotate/template.ts';
import { ENCODER_NAMES } from '../src/config/schema.ts';
import { Rng } from '../src/util/rng.ts';
import { sliceSamples } from './helpers.ts';

const FUNCTION_WORDS = new Set('a an the of with and or to in on at for from by but not as'.split(' '));
const words = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu) ?? [];
/** Crude stems, enough to tell "smiling" from "smile" apart from "frowning". */
const stem = (w: string) => (w.length > 4 ? w.replace(/(?:ing|ed|es|s|e)$/, '') : w.replace(/s$/, ''));

/** Why an instruction is not a sentence that names a difference between the captions, or undefined. */
function fault(instruction: string, source: string, target: string): string | undefined {
  if (!/^[A-Z]/.test(instruction)) return 'does not start with a capital';
  if (!/[^\s.?!][.?]$/.test(instruction)) return 'does not end a sentence';
  const w = words(instruction);
  if (w.length < 3) return 'fewer than three words';
  if (FUNCTION_WORDS.has(w[w.length - 1])) return `ends on "${w[w.length - 1]}"`;
  const quoted = new Set([...instruction.matchAll(/“([^”]+)”/g)].map((m) => m[1].toLowerCase()));
  if (w.some((x) => x.length === 1 && !/^[ai\d]$/.test(x) && !quoted.has(x))) return 'a stray letter';
  if (/(?:[\p{L}'-]+, ){2,}[\p{L}'-]+/u.test(instruction) || /\b[\p{L}'-]+, [\p{L}'-]+,? and [\p{L}'-]+\b/u.test(instruction)) return 'a word list';
  if (/another (?:image|picture) of (?:it|them)/i.test(instruction)) return 'says nothing';
  const s = new Set(words(source).map(stem));
  const t = new Set(words(target).map(stem));
  const differs = w.map(stem).some((x) => (x.length > 1 || quoted.has(x)) && s.has(x) !== t.has(x));
  if (!differs) return 'names no difference between the captions';
  return undefined;
}

test('template instructions over the demo corpus: sentences that each name a difference', async () => {
  const samples = await sliceSamples(['00000.tar', '00001.tar', '00002.tar']);
  const captions = samples.map((s) => s.txt.toString('utf8'));
  const faults: string[] = [];
  let checked = 0;
  for (let i = 0; i < captions.length; i++) {
    // Neighbours in the corpus are alike (as mined pairs are), and a far one for contrast.
    for (const j of [i + 1, i + 2, i + 37]) {
      const [source, target] = [captions[i], captions[j % captions.length]];
      if (source === target) continue;
      for (const relation of ENCODER_NAMES) {
        const { instructions } = writeAnnotation(source, target, relation, Rng.for(7, i, j, relation));
        assert.ok(instructions.length >= 3, `${source} -> ${target}`);
        assert.equal(new Set(instructions).size, instructions.length);
        for (const inst of instructions) {
          checked++;
          const why = fault(inst, source, target);
          if (why) faults.push(`${why}: "${inst}" (${source.split(';')[0]} -> ${target.split(';')[0]})`);
        }
      }
    }
  }
  assert.ok(checked > 1000, `${checked} instructions`);
  assert.deepEqual(faults.slice(0, 20), [], `${faults.length} of ${checked} instructions at fault`);
});

test('template instructions for letters, counts and sentence captions', () => {
  const cases: Array<[string, string]> = [
    ['Regional indicator symbol letter a; an emoji in symbols', 'Regional indicator symbol letter b; an emoji in symbols'],
    ['two dogs on a beach', 'three dogs in the snow'],
    ['The image shows a red car parked on a quiet street.', 'A blue truck parked on a quiet street at night.'],
    ['American sign language; tagged sign, letter', 'Sign of the horns; tagged hand, rock'],
  ];
  for (const [source, target] of cases) {
    const { instructions } = writeAnnotation(source, target, 'visual_semantic', new Rng(3));
    for (const inst of instructions) assert.equal(fault(inst, source, target), undefined, `"${inst}" for ${source} -> ${target}`);
  }
});
