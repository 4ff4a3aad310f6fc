// The offline annotator: no model server, only the two captions. It writes a description in the same
// "Both images ... However, the Source Image ..., whereas the Target Image ..." form as the MLLM and
// instructions by the same rule as the LLM: words both captions share are referred to by pronoun,
// words only the target's caption has are stated. Captions may be tag lists ("grinning face;
// cheerful, face, grin, happy, smile") or sentences; both read acceptably. Every choice of wording
// comes from the pair's rng, so output is deterministic.
import type { EncoderName } from '../config/schema.ts';
import type { Rng } from '../util/rng.ts';
import type { Annotation, PairAnnotator, PairToAnnotate, UnitAnnotations, UnitIO, UnitPair } from './annotator.ts';
import type { AnnotatorBackend } from './backend.ts';
import { annotateEachPair } from './each-pair.ts';

const TEMPLATE_VERSION = 'template-v2';

/** Words that carry no content of their own. */
const STOPWORDS = new Set(
  (
    'a an the and or but nor of in on at to for from by with without into onto over under above below near ' +
    'is are was were be been being has have had do does did it its this that these those there here ' +
    'image images photo photograph picture pic shows showing depicts depicting features featuring ' +
    'which who whom whose what while as than then so such very also just some any each other another'
  ).split(' '),
);
/** Words that end a noun phrase's head: "face | with smiling eyes". */
const PHRASE_BREAKS = new Set('with without on in at of by for from under over near behind beside next and or while holding wearing that which'.split(' '));
const ARTICLES = new Set('a an the this that these those some'.split(' '));
const COUNTS = new Set('two three four five six seven eight nine ten eleven twelve many several'.split(' '));
const DETERMINERS = new Set([...ARTICLES, ...COUNTS, 'one']);
/** Common describing words that no ending gives away (colours, sizes, ages ...). */
const DESCRIPTIVE = new Set(
  (
    'red orange yellow green blue purple pink brown black white grey gray gold silver dark light bright pale ' +
    'big small large tiny little huge tall short long wide narrow old new young round square flat thin thick ' +
    'hot cold warm cool wet dry sad glad calm wild cute open closed empty full clean dirty happy angry ' +
    'sunny cloudy rainy snowy funny shiny fluffy pretty ugly busy quiet noisy heavy tidy messy'
  ).split(' '),
);
const IRREGULAR_PLURALS = new Set('people children men women mice geese teeth feet sheep fish deer'.split(' '));
/** Preambles of sentence captions ("The image shows ..."), dropped from the subject phrase. */
const PREAMBLE =
  /^(?:(?:the|this|an?)\s+)?(?:image|photo(?:graph)?|picture|illustration|drawing|painting|emoji|icon)\s+(?:shows|depicts|features|of|is of)\s+/i;
const MAX_SUBJECT_WORDS = 12;
const MAX_LISTED = 5;
/** Per relation: description leads that name the shared words ({}), and the lead when there are none. */
const LEADS: Record<EncoderName, [string[], string]> = {
  visual_semantic: [['Both images show {}', 'Both images depict {}', 'Both images are about {}'], 'Both images depict closely related subjects'],
  visual_pattern: [
    ['Both images have a similar look and layout, featuring {}', 'Both images share a similar visual style, with {}'],
    'Both images have a similar look and layout',
  ],
  caption: [['Both images are described with {}', 'Both images have captions that mention {}'], 'Both images have closely related captions'],
};

/** A content word: its matching key (a crude stem) and the form it is written in. */
interface Term {
  stem: string;
  word: string;
}

/** What a caption says: its subject phrase and its content words in order. */
interface CaptionParts {
  subject: string;
  terms: Term[];
}

/** The backend: nothing to check, nothing to pay; what decides its annotations is its name and the seed. */
export const templateBackend: AnnotatorBackend = {
  name: 'template',
  decidedBy: () => ({}),
  preflight: async () => [],
  estimate: () => undefined,
  cost: () => undefined,
  sendsRequests: false,
  open: async () => new TemplateAnnotator(),
};

export class TemplateAnnotator implements PairAnnotator {
  readonly name = 'template';

  /** One pair at a time: each is a few string operations. */
  annotateUnit(pairs: readonly UnitPair[], io: UnitIO): Promise<UnitAnnotations> {
    return annotateEachPair(this, pairs, io, 1);
  }

  async annotate(pair: PairToAnnotate, rng: Rng): Promise<Annotation> {
    const { description, instructions } = writeAnnotation(pair.query.caption, pair.target.caption, pair.relation, rng);
    return {
      description,
      instructions,
      annotator: this.name,
      model: TEMPLATE_VERSION,
      prompt_version: TEMPLATE_VERSION,
      prompt_tokens: 0,
      completion_tokens: 0,
    };
  }
}

/** The description and 3-4 instructions for a pair of captions. Exported for tests and tools. */
export function writeAnnotation(
  sourceCaption: string,
  targetCaption: string,
  relation: EncoderName,
  rng: Rng,
): { description: string; instructions: string[] } {
  const source = captionParts(sourceCaption);
  const target = captionParts(targetCaption);
  const forms = surfaceForms([...source.terms, ...target.terms]);
  const sourceStems = new Set(source.terms.map((t) => t.stem));
  const targetStems = new Set(target.terms.map((t) => t.stem));
  // Shared words in their plainest form ("smile", not "smiling"); a side's own words as it wrote them.
  const shared = target.terms.filter((t) => sourceStems.has(t.stem)).map((t) => forms.get(t.stem)!);
  const targetOnly = target.terms.filter((t) => !sourceStems.has(t.stem)).map((t) => t.word);
  const sourceOnly = source.terms.filter((t) => !targetStems.has(t.stem)).map((t) => t.word);

  const description = describe(source, target, shared, sourceOnly, targetOnly, relation, rng);
  const instructions = instruct(source, target, sourceStems, sourceOnly, targetOnly, relation, rng);
  return { description, instructions };
}

// ---------------------------------------------------------------------------------------------
// Description

function describe(
  source: CaptionParts,
  target: CaptionParts,
  shared: string[],
  sourceOnly: string[],
  targetOnly: string[],
  relation: EncoderName,
  rng: Rng,
): string {
  const common = shared.length ? list(shared.slice(0, MAX_LISTED), 'and') : '';
  const [withCommon, withoutCommon] = LEADS[relation];
  const lead = common ? pick(rng, withCommon).replace('{}', common) : withoutCommon;

  const verb = pick(rng, ['shows', 'depicts']);
  const sourceSide = `${withArticle(source.subject)}${alsoDescribed(source, sourceOnly)}`;
  const targetSide = `${withArticle(target.subject)}${alsoDescribed(target, targetOnly)}`;
  return `${lead}. However, the Source Image ${verb} ${sourceSide}, whereas the Target Image ${verb} ${targetSide}.`;
}

/** ", also described as x and y" for a side's own words that its subject phrase does not say. */
function alsoDescribed(side: CaptionParts, own: string[]): string {
  const inSubject = new Set(contentWords(side.subject).map(stem));
  const extra = own.filter((w) => !inSubject.has(stem(w))).slice(0, MAX_LISTED);
  return extra.length ? `, also described as ${list(extra, 'and')}` : '';
}

// ---------------------------------------------------------------------------------------------
// Instructions

function instruct(
  source: CaptionParts,
  target: CaptionParts,
  sourceStems: Set<string>,
  sourceOnly: string[],
  targetOnly: string[],
  relation: EncoderName,
  rng: Rng,
): string[] {
  const plural = isPlural(head(source.subject));
  const it = plural ? 'them' : 'it';
  const they = plural ? 'they' : 'it';
  const thisOne = plural ? 'these' : 'this';
  const targetStems = new Set(target.terms.map((t) => t.stem));
  // What the target is called, and the same with what the source shares replaced by "one": both
  // are phrases from the caption's own name, so they read as English; each names a difference
  // only if it holds a word the source's caption lacks.
  const whole = nameable(target.subject, sourceStems) ? withArticle(target.subject) : undefined;
  const masked = maskedSubject(target.subject, sourceStems);
  // A name that differs by one letter or digit ("letter a" / "letter b") says it in quotes.
  const mark = marks(target.subject).find((m) => !marks(source.subject).includes(m));
  const changed = masked && nameable(masked, sourceStems) ? masked : (whole ?? (mark ? `one showing “${mark.toUpperCase()}”` : undefined));
  // Describing words of one caption only, one at a time ("sad", "not smiling"): never word lists.
  const gained = targetOnly.filter((w) => isAdjective(w) && w.length > 2);
  const lost = sourceOnly.filter((w) => isAdjective(w) && w.length > 2 && !targetStems.has(stem(w)));

  const candidates: string[] = [];
  if (changed) {
    candidates.push(`Make ${it} ${changed}.`);
    candidates.push(`What if ${they} ${plural ? 'were' : 'was'} ${changed}?`);
    candidates.push(
      {
        visual_semantic: `The same idea as ${thisOne}, shown as ${changed}.`,
        visual_pattern: `Keep the look of ${thisOne}, but make ${it} ${changed}.`,
        caption: `Something described like ${thisOne}, but as ${changed}.`,
      }[relation],
    );
  }
  if (gained.length) candidates.push(`The same, but ${gained[0]}.`);
  if (gained.length > 1) candidates.push(`Make ${it} look ${gained[1]}.`);
  if (lost.length) candidates.push(`The same, but not ${lost[0]}.`);

  const chosen = rng.sample(candidates, Math.min(candidates.length, rng.int(3, 4)));
  // Too few differences to say three ways: more wordings of what there is, then of the sameness.
  const fallbacks = [
    ...(changed ? [`Find ${changed}.`, `${capitalise(changed)}, please.`] : []),
    ...(gained.length ? [`Make ${it} look ${gained[0]}.`] : []),
    ...(lost.length ? [`Make ${it} look less ${lost[0]}.`] : []),
    // Words of the target's caption alone, quoted: a quoted word reads whatever its kind.
    ...targetOnly
      .filter((w) => /\p{L}{2}/u.test(w))
      .slice(0, 2)
      .map((w) => `Like ${thisOne}, but described as “${w}”.`),
    ...sourceOnly
      .filter((w) => /\p{L}{2}/u.test(w))
      .slice(0, 2)
      .map((w) => `Like ${thisOne}, but not “${w}”.`),
    `The same kind of picture as ${thisOne}.`,
    `Another picture much like ${thisOne}.`,
    `Something close to ${thisOne}.`,
  ];
  for (const f of fallbacks) if (chosen.length < 3 && !chosen.includes(f)) chosen.push(f);
  return chosen;
}

/** Whether a phrase holds a word of two or more letters, other than "one", that the other caption does not have. */
function nameable(phrase: string, otherStems: Set<string>): boolean {
  return contentWords(phrase).some((w) => /\p{L}{2}/u.test(w) && w !== 'one' && w !== 'ones' && !otherStems.has(stem(w)));
}

/** Single letters or digits that end a name or follow "letter", "digit", "number" or "key". */
function marks(subject: string): string[] {
  const words = subject.split(/\s+/).map(bare).filter(Boolean);
  return words.filter((w, i) => w.length === 1 && (i === words.length - 1 || /^(?:letter|digit|number|key)$/.test(words[i - 1] ?? '')) && i > 0);
}

/** A describing word that reads after "but" or "look": a known one, or one with an adjective's ending. */
function isAdjective(word: string): boolean {
  const w = word.toLowerCase();
  return DESCRIPTIVE.has(w) || /(?:ful|ous|less|ish|ive|able|[a-z]{3}[^e]ed)$/.test(w);
}

/**
 * The target's subject with what the source shares replaced: a shared head noun becomes "one",
 * shared modifiers before it are dropped ("beaming face with smiling eyes" -> "a beaming one with
 * smiling eyes"). Undefined when nothing of the target's own is left to say.
 */
function maskedSubject(subject: string, sourceStems: Set<string>): string | undefined {
  const words = subject.split(/\s+/).filter(Boolean);
  const end = headEnd(words.map(bare));
  const headWord = words[end - 1];
  const before = words.slice(0, end - 1).filter((w) => !ARTICLES.has(bare(w)) && !sourceStems.has(stem(bare(w))));
  const after = words.slice(end);
  const headShared = sourceStems.has(stem(bare(headWord)));
  if (headShared && before.length === 0 && after.length === 0) return undefined;
  const plural = isPlural(bare(headWord));
  if (headShared && plural && before.length === 1 && COUNTS.has(bare(before[0]))) {
    return [`${before[0]} of them`, ...after].join(' '); // "three of them in the snow"
  }
  const noun = headShared ? (plural ? 'ones' : 'one') : headWord;
  const phrase = [...before, noun, ...after].join(' ');
  return plural || (headShared && before.length === 0) ? phrase : withArticle(phrase);
}

// ---------------------------------------------------------------------------------------------
// Captions

/**
 * "grinning face; cheerful, face, grin" -> subject "grinning face"; "The image shows a red car on a
 * road. It is ..." -> subject "a red car on a road". Terms are every content word, deduplicated.
 */
function captionParts(caption: string): CaptionParts {
  const text = caption.replace(/\s+/g, ' ').trim();
  const first = text.split(/[;\n]|[.!?](?:\s|$)/)[0] ?? '';
  let subject = first
    .replace(PREAMBLE, '')
    .replace(/[,:\s]+$/, '')
    .trim();
  const words = subject.split(' ').filter(Boolean);
  if (words.length > MAX_SUBJECT_WORDS) subject = words.slice(0, MAX_SUBJECT_WORDS).join(' ');
  // A capital that only starts the caption is not the name's ("Beaming face"); an acronym keeps its own.
  if (words.length && !/^[A-Z0-9]{2,}$/.test(words[0])) subject = subject[0].toLowerCase() + subject.slice(1);
  if (!subject) subject = 'something';

  const seen = new Set<string>();
  const terms: Term[] = [];
  for (const word of contentWords(text)) {
    const s = stem(word);
    if (seen.has(s)) continue;
    seen.add(s);
    terms.push({ stem: s, word });
  }
  return { subject, terms };
}

function contentWords(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu) ?? []).filter((w) => !STOPWORDS.has(w) && w.length > 1);
}

/** For each stem, the shortest written form seen ("smile" over "smiling", "eye" over "eyes"). */
function surfaceForms(terms: Term[]): Map<string, string> {
  const forms = new Map<string, string>();
  for (const { stem: s, word } of terms) {
    const known = forms.get(s);
    if (!known || word.length < known.length) forms.set(s, word);
  }
  return forms;
}

/** A crude English stemmer, enough to match "grinning"/"grin", "smiling"/"smile", "eyes"/"eye". */
function stem(word: string): string {
  let s = word.toLowerCase();
  if (s.length > 4 && s.endsWith('ies')) s = `${s.slice(0, -3)}y`;
  else if (s.length > 4 && /(sh|ch|x|ss|z)es$/.test(s)) s = s.slice(0, -2);
  else if (s.length > 3 && s.endsWith('s') && !/(ss|us|is)$/.test(s)) s = s.slice(0, -1);
  if (s.length > 5 && s.endsWith('ing')) s = s.slice(0, -3);
  else if (s.length > 4 && s.endsWith('ed')) s = s.slice(0, -2);
  if (s.length > 3 && s.endsWith('e')) s = s.slice(0, -1);
  if (/([bdgmnprt])\1$/.test(s)) s = s.slice(0, -1);
  return s;
}

// ---------------------------------------------------------------------------------------------
// English

/** The last word of a phrase's first noun group: "beaming face with smiling eyes" -> "face". */
function head(phrase: string): string {
  const words = phrase.split(/\s+/).filter(Boolean).map(bare);
  return words[headEnd(words) - 1] ?? '';
}

/**
 * Where a phrase's first noun group ends: at a preposition or conjunction, or at a participle
 * that starts a clause ("a car | parked on ...", "a dog | sitting in ..."; not "a living room").
 */
function headEnd(words: string[]): number {
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    const next = words[i + 1] ?? '';
    if (PHRASE_BREAKS.has(w)) return i;
    if (/[a-z]{2}[^e]ed$/.test(w)) return i;
    if (/[a-z]{3}ing$/.test(w) && (next === '' || PHRASE_BREAKS.has(next) || DETERMINERS.has(next))) return i;
  }
  return words.length;
}

function isPlural(word: string): boolean {
  const w = word.toLowerCase();
  return IRREGULAR_PLURALS.has(w) || (w.length > 3 && w.endsWith('s') && !/(ss|us|is|ous)$/.test(w));
}

/** "grinning face" -> "a grinning face"; left alone when it has a determiner, a number or a plural head. */
function withArticle(phrase: string): string {
  const first = bare(phrase.split(/\s+/)[0] ?? '');
  if (!first || DETERMINERS.has(first) || /^\d/.test(first) || isPlural(head(phrase))) return phrase;
  const vowelSound = /^[aeiou]/.test(first) && !/^(uni|use|usu|one|eu)/.test(first);
  return `${vowelSound ? 'an' : 'a'} ${phrase}`;
}

/** "a, b and c" */
function list(items: string[], conjunction: 'and' | 'or'): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${conjunction} ${items[items.length - 1]}`;
}

function bare(word: string): string {
  return word.toLowerCase().replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng.next() * items.length)];
}
