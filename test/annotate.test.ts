// The annotators. OpenAIAnnotator is driven through the real `openai` SDK against a real HTTP server
// started here, speaking /v1/chat/completions, so requests, retries and failures are the real thing.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { inspect } from 'node:util';
import sharp from 'sharp';
import { AnnotationError, type PairToAnnotate } from '../src/annotate/annotator.ts';
import { annotatorBackend } from '../src/annotate/backends.ts';
import { DEMONSTRATIONS } from '../src/annotate/demonstrations.ts';
import { EndpointDownError } from '../src/annotate/endpoint.ts';
import { OpenAIAnnotator } from '../src/annotate/openai.ts';
import { parseDescription, parseInstructions } from '../src/annotate/replies.ts';
import { describePrompt, instructPrompt, PROMPT_VERSION } from '../src/annotate/prompts.ts';
import { TemplateAnnotator, writeAnnotation } from '../src/annotate/template.ts';
import type { Config, EncoderName, OpenAIAnnotatorConfig } from '../src/config/schema.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { Rng } from '../src/util/rng.ts';
import { tempDir } from './helpers.ts';
import { drop, FakeServer, GOOD_DESCRIPTION, GOOD_INSTRUCTIONS, good, hang, isDescribe, reply, status400, status500, type Handler } from './chat-server.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures

const KEY_ENV = 'MEGAPAIRS_TEST_KEY';
const KEY = 'sk-test-0123456789';
let server: FakeServer;
let baseUrl: string;
let sourcePng: Buffer;
let targetPng: Buffer;

function config(overrides: Partial<OpenAIAnnotatorConfig> = {}): OpenAIAnnotatorConfig {
  return {
    base_url: baseUrl,
    describe: {},
    instruct: {},
    word_num_tolerance: 0.5,
    instruction_words: [2, 40],
    structured_output: false,
    down_after_s: 600,
    retry_every_s: 10,
    api_key_env: KEY_ENV,
    mllm: 'test-mllm',
    llm: 'test-llm',
    word_num: [60, 100],
    demonstrations: 5,
    min_instructions: 3,
    image_size: 64,
    temperature: 0.7,
    max_tokens: 256,
    concurrency: 4,
    timeout_ms: 5000,
    attempts: 3,
    mode: 'online',
    batch: { poll_interval_s: 30, max_requests_per_file: 50_000, max_file_mb: 200, attempts: 3, down_after_s: 1800, price_factor: 0.5, expected_hours: 24 },
    ...overrides,
  };
}

function annotator(overrides: Partial<OpenAIAnnotatorConfig> = {}): OpenAIAnnotator {
  return new OpenAIAnnotator(config(overrides), { [KEY_ENV]: KEY }, { backoffBaseMs: 5, backoffMaxMs: 20 });
}

function pair(id = 'pair-0001', relation: EncoderName = 'visual_semantic'): PairToAnnotate {
  return {
    pairId: id,
    relation,
    similarity: 0.9,
    query: { key: 'q/1.png', caption: 'grinning face; cheerful, face, grin, happy, smile', bytes: async () => sourcePng },
    target: { key: 't/2.png', caption: 'beaming face with smiling eyes; face, grin, smile, eye', bytes: async () => targetPng },
  };
}

async function rejection(promise: Promise<unknown>): Promise<AnnotationError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof AnnotationError, `expected an AnnotationError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

before(async () => {
  server = new FakeServer();
  baseUrl = await server.start();
  // Translucent PNGs larger than image_size: exercises flattening and resizing.
  sourcePng = await sharp({ create: { width: 96, height: 80, channels: 4, background: { r: 255, g: 200, b: 0, alpha: 0.5 } } })
    .png()
    .toBuffer();
  targetPng = await sharp({ create: { width: 40, height: 120, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 1 } } })
    .png()
    .toBuffer();
});
after(async () => server.stop());
beforeEach(() => server.plan([]));

// ---------------------------------------------------------------------------------------------

describe('OpenAIAnnotator', () => {
  it('sends the two steps as MegaPairs describes them and returns the annotation', async () => {
    const a = annotator();
    const out = await a.annotate(pair(), new Rng(7));
    assert.equal(server.requests.length, 2);
    const [describeReq, instructReq] = server.requests;

    for (const r of server.requests) {
      assert.equal(r.url, '/v1/chat/completions');
      assert.equal(r.headers.authorization, `Bearer ${KEY}`);
    }

    // Step 1: the MLLM sees "Source Image:" <image> "Target Image:" <image> and the prompt.
    assert.equal(describeReq.body.model, 'test-mllm');
    const parts = describeReq.body.messages[0].content;
    assert.deepEqual(
      parts.map((p: any) => p.type),
      ['text', 'image_url', 'text', 'image_url', 'text'],
    );
    assert.equal(parts[0].text, 'Source Image:');
    assert.equal(parts[2].text, 'Target Image:');
    for (const part of [parts[1], parts[3]]) {
      const url: string = part.image_url.url;
      assert.ok(url.startsWith('data:image/jpeg;base64,'), url.slice(0, 40));
      const jpeg = Buffer.from(url.slice('data:image/jpeg;base64,'.length), 'base64');
      assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
      const meta = await sharp(jpeg).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.ok(meta.width! <= 64 && meta.height! <= 64, `${meta.width}x${meta.height}`);
      assert.equal(meta.hasAlpha, false);
    }
    const wordNum = Number(/under (\d+) words/.exec(parts[4].text)?.[1]);
    assert.ok(wordNum >= 60 && wordNum <= 100, `WORD_NUM ${wordNum}`);
    assert.match(
      parts[4].text,
      /Both images are \/ have \/ exhibit \/ show \[COMMON POINTS\]\. However, the Source Image \[DIFFERENCES\], whereas the Target Image \[DIFFERENCES\]\./,
    );
    assert.equal(describeReq.body.temperature, 0.7);
    assert.equal(describeReq.body.max_tokens, 256);

    // Step 2: the LLM gets the rules, 5 demonstrations from the pool and the description.
    assert.equal(instructReq.body.model, 'test-llm');
    const prompt: string = instructReq.body.messages[0].content;
    assert.equal(typeof prompt, 'string');
    const connections = prompt.split('- Connection: ').slice(1);
    assert.equal(connections.length, 6, '5 demonstrations + the task');
    const demos = connections.slice(0, 5).map((c) => c.split('\n')[0]);
    for (const d of demos)
      assert.ok(
        DEMONSTRATIONS.some((x) => x.description === d),
        `not from the pool: ${d}`,
      );
    assert.equal(new Set(demos).size, 5);
    assert.ok(connections[5].startsWith(GOOD_DESCRIPTION));
    assert.ok(prompt.trimEnd().endsWith('- Text Query:'));
    assert.match(prompt, /at least 3 strings/);

    assert.deepEqual(out, {
      description: GOOD_DESCRIPTION,
      instructions: GOOD_INSTRUCTIONS,
      annotator: 'openai',
      model: 'test-mllm+test-llm',
      prompt_version: PROMPT_VERSION,
      prompt_tokens: 200,
      completion_tokens: 20,
    });
  });

  it('never exposes the API key', () => {
    const a = annotator();
    assert.ok(!JSON.stringify(a).includes(KEY));
    assert.ok(!inspect(a, { depth: 10, showHidden: true }).includes(KEY));
  });

  it('uses "EMPTY" when the key variable is unset, and the mllm for both steps when llm is unset', async () => {
    const a = new OpenAIAnnotator(config({ llm: undefined }), {}, { backoffBaseMs: 5 });
    const out = await a.annotate(pair(), new Rng(1));
    assert.deepEqual(
      server.requests.map((r) => [r.headers.authorization, r.body.model]),
      [
        ['Bearer EMPTY', 'test-mllm'],
        ['Bearer EMPTY', 'test-mllm'],
      ],
    );
    assert.equal(out.model, 'test-mllm');
  });

  it('re-asks after a malformed instructions reply', async () => {
    server.plan([good, (_q, res, body) => reply(res, body, 'Sure! Here are some queries: "make it beam"')]);
    const out = await annotator().annotate(pair(), new Rng(2));
    assert.deepEqual(out.instructions, GOOD_INSTRUCTIONS);
    assert.equal(server.requests.length, 3);
    assert.notEqual(server.requests[1].body.seed, server.requests[2].body.seed, 'a re-ask varies the sampling seed');
    assert.equal(out.prompt_tokens, 300, 'tokens of every reply are counted');
  });

  it('fails with instructions_too_few when every reply has too few', async () => {
    const fewer: Handler = (_q, res, body) => reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : '["only one", "and two"]');
    server.plan([], fewer);
    const err = await rejection(annotator().annotate(pair('pair-bad'), new Rng(3)));
    assert.equal(err.reason, 'instructions_too_few');
    assert.match(err.message, /pair-bad/);
    assert.match(err.message, /only 2 distinct usable instruction\(s\), at least 3 needed/);
    assert.match(err.message, /only one/, 'quotes the reply');
    assert.equal(server.requests.length, 1 + 3);
  });

  it('fails with description_off_template when the description lacks the Source/Target form', async () => {
    server.plan([], (_q, res, body) => reply(res, body, 'Two pictures of faces.'));
    const err = await rejection(annotator().annotate(pair('pair-desc'), new Rng(3)));
    assert.equal(err.reason, 'description_off_template');
    assert.match(err.message, /pair-desc/);
    assert.match(err.message, /Two pictures of faces/);
    assert.equal(server.requests.length, 3);
  });

  it('treats a description cut off at max_tokens as malformed', async () => {
    server.plan([(_q, res, body) => reply(res, body, GOOD_DESCRIPTION, 'length')]);
    const out = await annotator().annotate(pair(), new Rng(4));
    assert.equal(out.description, GOOD_DESCRIPTION);
    assert.equal(server.requests.length, 3);
  });

  it('retries after HTTP 500', async () => {
    server.plan([status500]);
    const out = await annotator().annotate(pair(), new Rng(5));
    assert.deepEqual(out.instructions, GOOD_INSTRUCTIONS);
    assert.equal(server.requests.length, 3);
  });

  it('retries after a dropped connection', async () => {
    server.plan([good, drop]);
    const out = await annotator().annotate(pair(), new Rng(6));
    assert.deepEqual(out.instructions, GOOD_INSTRUCTIONS);
    assert.equal(server.requests.length, 3);
  });

  it("retries a dropped connection and a hung request whatever the attempts: they are the environment's", async () => {
    server.plan([drop]);
    assert.equal((await annotator({ attempts: 1 }).annotate(pair(), new Rng(6))).description, GOOD_DESCRIPTION);
    server.plan([hang]);
    assert.equal((await annotator({ attempts: 1, timeout_ms: 200 }).annotate(pair('pair-slow'), new Rng(6))).description, GOOD_DESCRIPTION);
  });

  it('retries after a timeout', async () => {
    server.plan([hang]);
    const out = await annotator({ timeout_ms: 300 }).annotate(pair(), new Rng(6));
    assert.equal(out.description, GOOD_DESCRIPTION);
    assert.equal(server.requests.length, 3);
  });

  it('fails with http_error once attempts are spent on 500s', async () => {
    server.plan([], status500);
    const err = await rejection(annotator().annotate(pair('pair-500'), new Rng(8)));
    assert.equal(err.reason, 'http_error');
    assert.match(err.message, /pair-500/);
    assert.match(err.message, /HTTP 500/);
    assert.match(err.message, /attempt 3 of 3/);
    assert.equal(server.requests.length, 3);
  });

  it('does not retry a client error (400)', async () => {
    server.plan([], status400);
    const err = await rejection(annotator().annotate(pair('pair-400'), new Rng(8)));
    assert.equal(err.reason, 'http_error');
    assert.match(err.message, /HTTP 400/);
    assert.equal(server.requests.length, 1);
  });

  it('fails the unit, not the pair, when nothing listens past down_after_s', async () => {
    const lines: string[] = [];
    const closed = new FakeServer();
    const url = await closed.start();
    await closed.stop();
    const a = new OpenAIAnnotator(config({ base_url: url, down_after_s: 0.5, retry_every_s: 0.1 }), {}, { backoffBaseMs: 5, log: (l) => lines.push(l) });
    await assert.rejects(a.annotate(pair('pair-conn'), new Rng(1)), (err: Error) => {
      assert.ok(err instanceof EndpointDownError, String(err));
      assert.ok(err.message.startsWith(`describe endpoint ${url} unreachable since`), err.message);
      assert.match(err.message, /unreachable since \d\d:\d\d:\d\d \(ECONNREFUSED\)/);
      assert.match(err.message, /down_after_s/);
      return true;
    });
    assert.match(lines[0], /describe endpoint http:\/\/127\.0\.0\.1:\d+\/v1 unreachable since \d\d:\d\d:\d\d \(ECONNREFUSED\); retrying every 0\.1 s/);
  });

  it('fails with image_error for an undecodable image', async () => {
    const p = pair('pair-img');
    p.target.bytes = async () => Buffer.from('not an image');
    const err = await rejection(annotator().annotate(p, new Rng(1)));
    assert.equal(err.reason, 'image_error');
    assert.match(err.message, /pair-img.*t\/2\.png/);
    assert.equal(server.requests.length, 0);
  });

  it('sends the same requests for the same seed, and different ones for another seed', async () => {
    const bodies = async (seed: number) => {
      server.plan([]);
      await annotator().annotate(pair(), new Rng(seed));
      return server.requests.map((r) => r.body);
    };
    const first = await bodies(42);
    const again = await bodies(42);
    const other = await bodies(43);
    assert.deepEqual(again, first);
    assert.notDeepEqual(other[1].messages, first[1].messages);
  });
});

describe('reply parsing', () => {
  it('accepts code fences, prose around the list, trailing commas and duplicates', () => {
    const replies = [
      '```json\n["a one", "b two", "c three"]\n```',
      'Here are the queries [3 of them]:\n["a one", "b two", "c three",]\nHope this helps!',
      '<think>pondering [x]</think>["a one", "b two", "b two", "c three"]',
      '- Text Query: ["a one",\n "b two",\n "c three"\n]',
    ];
    for (const r of replies) assert.deepEqual(parseInstructions(r, 3), { ok: true, value: ['a one', 'b two', 'c three'] }, r);
  });

  it('refuses non-strings, empty strings, too few items and no list', () => {
    const cases: Array<[string, RegExp]> = [
      ['["a", 2, "c"]', /item 1 is a number/],
      ['["a", "  ", "c"]', /item 1 is an empty string/],
      ['["a", "b"]', /only 2/],
      ['["a", "a", "b"]', /only 2/],
      ['no list here', /no JSON list/],
      ['["a", "b", "c"', /unterminated/],
    ];
    for (const [reply, problem] of cases) {
      const parsed = parseInstructions(reply, 3);
      assert.equal(parsed.ok, false, reply);
      if (!parsed.ok) assert.match(parsed.problem, problem);
    }
  });

  it('keeps a description in the template and drops a preamble line', () => {
    assert.deepEqual(parseDescription(`Here is the summary:\n"${GOOD_DESCRIPTION}"`), { ok: true, value: GOOD_DESCRIPTION });
    assert.equal(parseDescription('').ok, false);
    assert.equal(parseDescription('Both images show a dog. The first is brown, the second is black.').ok, false);
  });

  it('inserts a description literally into the instruct prompt', () => {
    const prompt = instructPrompt('Both images cost $& and $1. However, the Source Image x, whereas the Target Image y.', [], 3);
    assert.ok(prompt.includes('cost $& and $1.'));
    assert.match(describePrompt(77), /under 77 words/);
  });
});

describe('TemplateAnnotator', () => {
  it('writes a description and at least 3 instructions from the captions, deterministically', async () => {
    const t = new TemplateAnnotator();
    for (const relation of ['visual_semantic', 'visual_pattern', 'caption'] as const) {
      const out = await t.annotate(pair('p', relation), new Rng(11));
      assert.equal(out.annotator, 'template');
      assert.equal(out.model, 'template-v2');
      assert.equal(out.prompt_tokens, 0);
      assert.match(out.description, /^Both images .+\. However, the Source Image .+, whereas the Target Image .+\.$/);
      // Words only the target's caption has are stated.
      assert.match(out.description, /beaming face with smiling eyes/);
      assert.ok(out.instructions.length >= 3 && out.instructions.length <= 4);
      for (const i of out.instructions) {
        assert.ok(i.trim().length > 0);
        // "face" is shared by both captions: the instructions call it by pronoun.
        assert.doesNotMatch(i, /\bface\b/i);
      }
      assert.ok(out.instructions.some((i) => /\bbeaming\b/.test(i)));
      assert.deepEqual(await t.annotate(pair('p', relation), new Rng(11)), out);
    }
  });

  it('copes with identical, empty and sentence captions', () => {
    for (const [q, t] of [
      ['cat', 'cat'],
      ['', ''],
      ['The image shows a red car parked on a quiet street.', 'A blue truck parked on a quiet street at night.'],
      ['two dogs on a beach', 'three dogs in the snow'],
    ]) {
      const out = writeAnnotation(q, t, 'visual_semantic', new Rng(3));
      assert.match(out.description, /^Both images .*However, the Source Image .*, whereas the Target Image .*\.$/, `${q} / ${t}`);
      assert.ok(out.instructions.length >= 3, `${q} / ${t}`);
      assert.equal(new Set(out.instructions).size, out.instructions.length);
    }
  });
});

describe('demonstration pool', () => {
  it('holds 50 well-formed, distinct demonstrations', () => {
    assert.equal(DEMONSTRATIONS.length, 50);
    assert.equal(new Set(DEMONSTRATIONS.map((d) => d.description)).size, 50);
    for (const d of DEMONSTRATIONS) {
      assert.match(d.description, /^Both images .+\. However, the Source Image('s)? .+, whereas the Target Image('s)? .+\.$/, d.description);
      assert.ok(d.instructions.length >= 3 && d.instructions.length <= 5, d.description);
      assert.equal(new Set(d.instructions).size, d.instructions.length, d.description);
      for (const i of d.instructions) {
        assert.equal(i, i.trim());
        assert.ok(i.length > 0);
        assert.doesNotMatch(i, /source image|target image/i);
      }
      // The pronoun rule: shared content is referred to, not named.
      assert.ok(
        d.instructions.some((i) => /\b(it|its|them|this|these|the same|same|one|him|her|they|their|there)\b/i.test(i)),
        d.description,
      );
      // Each description parses as the MLLM's would.
      assert.ok(parseDescription(d.description).ok);
    }
  });
});

describe('annotator backends', () => {
  it('open the annotator the config names', async () => {
    const open = (annotate: object) => {
      const c = { annotate } as Config;
      return annotatorBackend(c).open(c, { work: new LocalStorage(tempDir('backend-open')), env: { [KEY_ENV]: KEY } });
    };
    assert.ok((await open({ annotator: 'template' })) instanceof TemplateAnnotator);
    const a = await open({ annotator: 'openai', openai: config() });
    assert.ok(a instanceof OpenAIAnnotator);
    assert.equal(a.name, 'openai');
    assert.throws(
      () => annotatorBackend({ annotate: { annotator: 'nope' } } as never),
      /annotate\.annotator: no annotator backend "nope" \(there are "template", "openai"\)/,
    );
  });
});
