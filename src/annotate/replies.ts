// The checks a model reply must pass to become an annotation (the paper's two steps): a description
// in the template and within its WORD_NUM, instructions that a retriever can use. A rejection
// carries its own stable reason, so the ledger counts each kind of bad reply apart.
import { errorText, excerpt } from './text.ts';

/** A parse outcome: the value, or the reason code and what was wrong with the reply. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string; problem: string };

const fail = (reason: string, problem: string): { ok: false; reason: string; problem: string } => ({ ok: false, reason, problem });

/** A model declining or unable: first person, apology, "as an AI". */
const REFUSAL =
  /\b(?:i['’]?m sorry|i am sorry|i apologi[sz]e|i can(?:not|['’]t)|i (?:am|['’]m) (?:not able|unable)|as an ai\b|(?:unable|not able) to (?:help|assist|comply|process|view|see|access)|can(?:not|['’]t) (?:help|assist|comply) with)/i;
/** Talk about the task instead of doing it. */
const META_TALK = /\b(?:language model|i hope this helps|let me know if|here (?:is|are) (?:the|some|your|a|an|my)\b|text quer(?:y|ies)\s*:|connection\s*:)/i;
const NAMES_IMAGES = /\b(?:source|target) image\b/i;
/** An instruction sharing this many consecutive words with the description copies it. */
const COPIED_RUN = 10;

/** Reasoning models (DeepSeek-R1, Qwen3 ...) may prefix their answer with a <think> block. */
function stripReasoning(reply: string): string {
  return reply.replace(/<think>[\s\S]*?<\/think>/gi, '').trim();
}

const words = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu) ?? [];

export interface DescriptionRules {
  /** The WORD_NUM the prompt asked for. */
  wordNum: number;
  /** How far over WORD_NUM a description may run, as a share of it. */
  tolerance: number;
}

/**
 * A step-3 reply: in the "Both images ... However, the Source Image ..., whereas the Target Image
 * ..." form and within WORD_NUM (plus tolerance). A preamble line such as "Here is the summary:"
 * and quotes or fences around the template are dropped; wording inside it is the model's own.
 */
export function parseDescription(reply: string, rules?: DescriptionRules): Parsed<string> {
  let text = stripReasoning(reply);
  const fenced = /^```[a-z]*\s*([\s\S]*?)\s*```$/i.exec(text);
  if (fenced) text = fenced[1];
  const start = text.search(/["'“]?both images\b/i);
  if (start > 0 && /[:\n]\s*$/.test(text.slice(0, start))) text = text.slice(start);
  text = text.replace(/\s+/g, ' ').trim();
  // The template is often echoed inside quotes.
  const quoted = /^["'“](.*)["'”]$/.exec(text);
  if (quoted) text = quoted[1].trim();
  if (!text) return fail('description_empty', 'empty reply');
  if (REFUSAL.test(text)) return fail('description_refusal', 'a refusal, not a description');
  if (META_TALK.test(text)) return fail('description_meta_talk', 'talks about the task instead of describing the images');
  const source = text.search(/\bsource image\b/i);
  const target = text.search(/\btarget image\b/i);
  if (!/^both images\b/i.test(text) || source < 0 || target < source) {
    const missing = [
      /^both images\b/i.test(text) ? '' : 'does not start with "Both images"',
      source < 0 ? 'no "Source Image"' : '',
      target < 0 ? 'no "Target Image"' : target < source ? '"Target Image" before "Source Image"' : '',
    ].filter(Boolean);
    return fail(
      'description_off_template',
      `not in the "Both images ... However, the Source Image ..., whereas the Target Image ..." form (${missing.join(', ')})`,
    );
  }
  if (rules) {
    const count = words(text).length;
    const most = Math.floor(rules.wordNum * (1 + rules.tolerance));
    if (count > most) return fail('description_too_long', `${count} words, asked for under ${rules.wordNum} (at most ${most} accepted)`);
  }
  return { ok: true, value: text };
}

export interface InstructionRules {
  min: number;
  /** Words per instruction, inclusive. */
  words: readonly [number, number];
  /** The description they were written from: an instruction must not copy it. */
  description: string;
}

/**
 * A step-4 reply: a JSON list of strings (or `{"instructions": [...]}`, the structured-output
 * form). Tolerated: code fences, prose around the list, trailing commas, duplicates (dropped).
 * A refusal or meta-talk anywhere rejects the reply; an item that names the Source/Target Image,
 * is outside the length bounds or copies the description is dropped; fewer than `min` left
 * rejects it with the first drop's reason.
 */
export function parseInstructions(reply: string, rules: InstructionRules | number): Parsed<string[]> {
  const r: InstructionRules = typeof rules === 'number' ? { min: rules, words: [1, 1000], description: '' } : rules;
  const list = jsonList(stripReasoning(reply));
  if (!list.ok) return list;

  const seen = new Set<string>();
  const instructions: string[] = [];
  let firstDrop: { reason: string; problem: string } | undefined;
  const described = ` ${words(r.description).join(' ')} `;
  for (const [i, item] of list.value.entries()) {
    if (typeof item !== 'string') return fail('instructions_not_strings', `item ${i} is ${item === null ? 'null' : `a ${typeof item}`}, not a string`);
    const text = item.replace(/\s+/g, ' ').trim();
    if (!text) return fail('instructions_not_strings', `item ${i} is an empty string`);
    if (REFUSAL.test(text)) return fail('instructions_refusal', `item ${i} is a refusal`);
    if (META_TALK.test(text)) return fail('instructions_meta_talk', `item ${i} talks about the task`);
    const key = text.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    const w = words(text);
    let drop: { reason: string; problem: string } | undefined;
    if (NAMES_IMAGES.test(text)) drop = { reason: 'instructions_name_images', problem: `item ${i} names the "Source Image" / "Target Image"` };
    else if (w.length < r.words[0] || w.length > r.words[1]) {
      drop = { reason: 'instructions_length', problem: `item ${i} has ${w.length} words, outside [${r.words[0]}, ${r.words[1]}]` };
    } else if (copiesDescription(w, described)) drop = { reason: 'instructions_copy_description', problem: `item ${i} copies the description` };
    if (drop) firstDrop ??= drop;
    else instructions.push(text);
  }
  if (instructions.length < r.min) {
    const why = `only ${instructions.length} distinct usable instruction(s), at least ${r.min} needed`;
    return firstDrop ? fail(firstDrop.reason, `${firstDrop.problem}; ${why}`) : fail('instructions_too_few', why);
  }
  return { ok: true, value: instructions };
}

function copiesDescription(w: string[], described: string): boolean {
  if (w.length < COPIED_RUN || described.length < 3) return false;
  for (let i = 0; i + COPIED_RUN <= w.length; i++) if (described.includes(` ${w.slice(i, i + COPIED_RUN).join(' ')} `)) return true;
  return false;
}

/** The first JSON list in the text (fenced or amid prose) that holds strings. */
function jsonList(reply: string): Parsed<unknown[]> {
  let text = reply;
  const fenced = /```[a-z]*\s*([\s\S]*?)```/i.exec(text);
  if (fenced) text = fenced[1];
  let firstProblem: string | undefined;
  // Prose may hold brackets of its own ("[3 queries]"): try each "[" until one parses as a list.
  for (let from = text.indexOf('['); from >= 0; from = text.indexOf('[', from + 1)) {
    const candidate = balancedList(text, from);
    if (candidate === null) {
      firstProblem ??= 'unterminated JSON list';
      continue;
    }
    try {
      const value: unknown = JSON.parse(dropTrailingCommas(candidate));
      if (Array.isArray(value) && value.some((v) => typeof v === 'string')) return { ok: true, value };
      firstProblem ??= 'the list holds no strings';
    } catch (err) {
      firstProblem ??= `not valid JSON (${errorText(err)})`;
    }
  }
  if (REFUSAL.test(text)) return fail('instructions_refusal', 'a refusal, not a list');
  return fail('instructions_not_json', firstProblem ?? 'no JSON list in the reply');
}

/** The text of the JSON list opening at `from`, to its matching "]", or null if it never closes. */
function balancedList(text: string, from: number): string | null {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) return text.slice(from, i + 1);
    }
  }
  return null;
}

/** Removes commas that directly precede "]" or "}", outside strings (`["a", "b",]`). */
function dropTrailingCommas(json: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      out += c;
      if (c === '\\') out += json[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    if (c === ',' && /^\s*[\]}]/.test(json.slice(i + 1))) continue;
    out += c;
  }
  return out;
}

/** For messages: what was wrong and the reply it was wrong in. */
export function rejectionText(problem: string, reply: string): string {
  return `${problem}; reply: ${excerpt(reply)}`;
}
