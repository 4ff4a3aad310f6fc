// The two prompts of MegaPairs' annotation (arXiv 2412.14475, appendix A, figures 3 and 4):
//  - describe (MLLM): shown "Source Image" and "Target Image", summarise what they share and how
//    they differ in WORD_NUM words, in the paper's fixed template;
//  - instruct (LLM): turn that description into text queries that, with the source image, would
//    retrieve the target, taught by demonstrations drawn from our pool.
// The wording follows the paper's figures; we add only what a chat model needs to reply in a
// parseable form (a JSON list, a minimum count).
import { createHash } from 'node:crypto';
import { DEMONSTRATIONS, type Demonstration } from './demonstrations.ts';

/** Labels put before each image in the describe request (the paper's "Source Image:" / "Target Image:"). */
export const SOURCE_LABEL = 'Source Image:';
export const TARGET_LABEL = 'Target Image:';

/** The paper's output template; parseDescription (openai.ts) checks replies for its Source/Target form. */
const DESCRIPTION_TEMPLATE =
  'Both images are / have / exhibit / show [COMMON POINTS]. However, the Source Image [DIFFERENCES], whereas the Target Image [DIFFERENCES].';

const DESCRIBE_TEMPLATE = [
  'Look carefully at how the Source Image and the Target Image are connected and how they differ.',
  'Summarise the key commonality and the detailed differences between them in under WORD_NUM words.',
  `Use this template: '${DESCRIPTION_TEMPLATE}'`,
].join(' ');

const INSTRUCT_TEMPLATE = `## Instruction: Based on the provided connection of two different images, create interesting text queries that can be used with the source image to retrieve the target image.
1) Replace what the target shares with the source image by non-specific pronouns (it, them, this, these, the same ...), so that no explicit detail of the source image is revealed, and keep each query concise.
2) State the unique differences that are present only in the target image.
Reply with a JSON list of at least MIN_INSTRUCTIONS strings and nothing else.

## Demonstrations:
DEMONSTRATIONS

## Your Task:
- Connection: DESCRIPTION
- Text Query:`;

/** The text part of the describe request; it follows the two labelled images. */
export function describePrompt(wordNum: number): string {
  return DESCRIBE_TEMPLATE.replace('WORD_NUM', String(wordNum));
}

/** One demonstration as the instruct prompt shows it. */
function formatDemonstration(d: Demonstration): string {
  return `- Connection: ${d.description}\n- Text Query: ${JSON.stringify(d.instructions)}`;
}

/** The whole instruct request: rules, the drawn demonstrations, then the description to rewrite. */
export function instructPrompt(description: string, demonstrations: readonly Demonstration[], minInstructions: number): string {
  // Function replacers: a description containing "$&" or "$1" must be inserted literally.
  return INSTRUCT_TEMPLATE.replace('MIN_INSTRUCTIONS', () => String(minInstructions))
    .replace('DEMONSTRATIONS', () => demonstrations.map(formatDemonstration).join('\n\n'))
    .replace('DESCRIPTION', () => description.replace(/\s+/g, ' ').trim());
}

/**
 * Recorded with every annotation. The suffix is a hash of both templates and the whole pool, so an
 * edit to any of them changes the version even if nobody remembers to bump the prefix.
 */
export const PROMPT_VERSION = `megapairs-v1-${createHash('sha256')
  .update([DESCRIBE_TEMPLATE, INSTRUCT_TEMPLATE, SOURCE_LABEL, TARGET_LABEL, JSON.stringify(DEMONSTRATIONS)].join('\u0000'))
  .digest('hex')
  .slice(0, 8)}`;
