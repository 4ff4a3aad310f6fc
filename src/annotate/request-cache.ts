// Every paid call kept: each chat completion the server answered is written to the work storage,
// by the hash of its request (model, messages, parameters), before it is used. A killed unit, a
// retry, a rerun or a re-mine that sends the same request reads the reply instead of paying again;
// on shared work storage this serves every worker of a distributed run.
import { createHash } from 'node:crypto';
import { cachedRequestPath } from '../core/layout.ts';
import { NotFoundError, type Storage } from '../storage/storage.ts';

/** What is kept of a reply: enough to parse it again and to count its tokens. */
export interface CachedCompletion {
  content: string;
  finish_reason: string;
  prompt_tokens: number;
  completion_tokens: number;
}

interface CacheFile {
  request: string;
  model: string;
  at: string;
  completion: CachedCompletion;
}

/** The hash a request is kept under: its whole body, as sent (keys in the order the code builds them). */
export function requestHash(body: object): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}

export class RequestCache {
  constructor(private readonly work: Storage) {}

  async get(hash: string): Promise<CachedCompletion | undefined> {
    try {
      const file = JSON.parse((await this.work.read(cachedRequestPath(hash))).toString('utf8')) as CacheFile;
      return file.completion;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      // A file that is not JSON cannot come from our atomic writes; the request is simply sent again.
      if (err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  put(hash: string, model: string, completion: CachedCompletion): Promise<void> {
    const file: CacheFile = { request: hash, model, at: new Date().toISOString(), completion };
    return this.work.write(cachedRequestPath(hash), JSON.stringify(file));
  }
}
