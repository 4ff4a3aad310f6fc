// Preflight's storage checks: the input lists and holds shards, work and output take a write, a
// read and a delete (a probe object, removed again), and every model and tokenizer file the
// encoders name exists and can be read. Cheap, and each finds in seconds what a run would find
// only after hours of catalog.
import { open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import { ENCODER_NAMES } from '../config/schema.ts';
import { listShards } from '../corpus/webdataset.ts';
import type { StageContext } from '../core/stage.ts';
import type { Storage } from '../storage/storage.ts';
import { describeError } from '../util/error-chain.ts';
import type { PreflightProblem } from '../core/problem.ts';

/** Input: listable, with at least one NNNNN.tar shard. */
export async function checkInput(input: Storage): Promise<PreflightProblem[]> {
  const expected = 'a listable folder or s3:// prefix holding img2dataset NNNNN.tar shards';
  try {
    if ((await listShards(input)).length) return [];
    let others = 0;
    for await (const _ of input.list('')) others++;
    return [{ key: 'input.path', found: `${input.root}: no NNNNN.tar shards (${others} other object${others === 1 ? '' : 's'})`, expected }];
  } catch (err) {
    return [{ key: 'input.path', found: `${input.root}: ${describeError(err)}`, expected }];
  }
}

/** Work or output: a probe object written, read back whole and deleted. */
export async function checkWritable(key: string, storage: Storage): Promise<PreflightProblem[]> {
  const probe = `.megapairs-preflight-${process.pid}-${randomBytes(4).toString('hex')}`;
  const body = `megapairs preflight probe ${new Date().toISOString()}\n`;
  let step = 'write';
  try {
    await storage.write(probe, body);
    step = 'read back';
    const back = (await storage.read(probe)).toString('utf8');
    if (back !== body)
      return [
        {
          key,
          found: `${storage.uri(probe)}: read back ${back.length} bytes that differ from the ${body.length} written`,
          expected: 'what was written reads back the same',
        },
      ];
    step = 'delete';
    await storage.delete(probe);
    return [];
  } catch (err) {
    return [
      {
        key,
        found: `${step} of ${storage.uri(probe)} failed: ${describeError(err)}`,
        expected: 'a folder or s3:// prefix this process can write, read and delete in',
      },
    ];
  }
}

/** A local file that opens and yields its first byte. */
async function checkFile(key: string, file: string, what: string): Promise<PreflightProblem[]> {
  const expected = `a readable ${what} file`;
  try {
    const fh = await open(file, 'r');
    try {
      const stat = await fh.stat();
      if (!stat.isFile()) return [{ key, found: `${file} is not a file`, expected }];
      if (stat.size === 0) return [{ key, found: `${file} is empty`, expected }];
      await fh.read(Buffer.alloc(1), 0, 1, 0);
    } finally {
      await fh.close();
    }
    return [];
  } catch (err) {
    return [{ key, found: `${file}: ${describeError(err)}`, expected }];
  }
}

const isBuiltin = (ref: string) => ref.startsWith('builtin:');

/** Every encoder's model (and the caption encoder's tokenizer) that is a file, not a built-in. */
export async function checkModelFiles(config: Config): Promise<PreflightProblem[]> {
  const checks: Array<Promise<PreflightProblem[]>> = [];
  for (const name of ENCODER_NAMES) {
    const e = config.encoders[name];
    if (!isBuiltin(e.model)) checks.push(checkFile(`encoders.${name}.model`, e.model, 'ONNX model'));
  }
  const { tokenizer } = config.encoders.caption;
  if (!isBuiltin(tokenizer)) checks.push(checkFile('encoders.caption.tokenizer', tokenizer, 'tokenizer.json'));
  return (await Promise.all(checks)).flat();
}

export async function checkStorage(ctx: StageContext): Promise<PreflightProblem[]> {
  const found = await Promise.all([checkInput(ctx.input), checkWritable('work', ctx.work), checkWritable('output', ctx.output), checkModelFiles(ctx.config)]);
  return found.flat();
}
