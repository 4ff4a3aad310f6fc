// What the two whole-run tests of the openai annotator share (pipeline-openai.test.ts online,
// pipeline-openai-batch.test.ts by batch): the test server and its handler that ledgers some
// pairs, the run config, and a CLI run that can be killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { after, before } from 'node:test';
import { FakeServer, type ServerOptions, GOOD_DESCRIPTION, GOOD_INSTRUCTIONS, isDescribe, reply, type Handler } from './chat-server.ts';
import { demoConfigObject, repoRoot } from './helpers.ts';

export const MODELS = ['internvl2-26b', 'llama-3-8b'];

/** A test server started before the file's tests and stopped after them; `url()` once started. */
export function sharedServer(opts?: ServerOptions): { server: FakeServer; url: () => string } {
  const server = new FakeServer(opts);
  let baseUrl = '';
  before(async () => {
    baseUrl = await server.start();
  });
  after(() => server.stop());
  return { server, url: () => baseUrl };
}

/** The source image's data URL decides, so every attempt for one pair gets the same answer. */
const dislikes = (body: any) => createHash('sha256').update(body.messages[0].content[1].image_url.url).digest()[0] % 4 === 0;

/** Good instructions; a description without the Source/Target structure for the pairs `dislikes`: they end in the ledger. */
export const byImage: Handler = (_req, res, body) => {
  if (!isDescribe(body)) return reply(res, body, JSON.stringify(GOOD_INSTRUCTIONS));
  reply(res, body, dislikes(body) ? 'Two pictures.' : GOOD_DESCRIPTION);
};

/** A run config with the openai annotator on `url`; `openai` adds to or overrides its settings. */
export function openaiConfig(root: string, input: string, url: string, openai: Record<string, unknown> = {}, maxShards = 2) {
  return demoConfigObject(input, root, {
    input: { path: input, max_shards: maxShards },
    annotate: { annotator: 'openai', openai: { base_url: url, mllm: MODELS[0], llm: MODELS[1], concurrency: 4, ...openai } },
  });
}

/** `megapairs run` as a child process, to be killed or waited for (-1 when a signal ended it). */
export function runCli(configFile: string): { child: ChildProcess; done: Promise<number>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), 'run', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : 0))));
  return { child, done, stderr: () => stderr };
}

/** Two attempts a request and a price per model: the settings of the runs whose ledger and cost are checked. */
export const PRICED = {
  attempts: 2,
  price: { 'internvl2-26b': { prompt: 0.5, completion: 1.5 }, 'llama-3-8b': { prompt: 0.1, completion: 0.2 } },
};
