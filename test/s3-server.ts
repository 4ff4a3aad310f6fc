// A real S3-protocol server for tests: s3rver in a child process on 127.0.0.1, a free port, a temp
// folder. It runs with --openssl-legacy-provider because its listing continuation tokens use DES,
// which Node 20's OpenSSL 3 only offers through the legacy provider.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStorage } from '../src/storage/open.ts';
import type { Storage } from '../src/storage/storage.ts';
import { mapPool } from '../src/util/pool.ts';
import { repoRoot } from './helpers.ts';

export interface S3TestServer {
  endpoint: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** s3rver's built-in account; the SDK's default credential chain reads these variables. */
function useTestCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

export async function startS3Server(buckets: string[]): Promise<S3TestServer> {
  useTestCredentials();
  const dir = mkdtempSync(path.join(tmpdir(), 'megapairs-s3rver-'));
  const args = ['--openssl-legacy-provider', path.join(repoRoot, 'node_modules/s3rver/bin/s3rver.js'), '-d', dir, '-a', '127.0.0.1', '-p', '0', '--silent'];
  for (const b of buckets) args.push('--configure-bucket', b);
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d;
      const m = /listening on [\d.]+:(\d+)/.exec(output);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening:\n${output}`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    async stop() {
      process.off('exit', kill);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A storage at an s3:// location of the server itself, past any fault proxy. */
export function directStorage(server: S3TestServer, location: string): Storage {
  return openStorage(location, { s3: { endpoint: server.endpoint, force_path_style: true } });
}

/** Puts a local img2dataset folder's shard files (NNNNN.tar, .parquet, _stats.json) under an s3:// prefix. */
export async function uploadCorpus(server: S3TestServer, dir: string, location: string): Promise<void> {
  const store = directStorage(server, location);
  const files = (await readdir(dir)).filter((f) => /^\d+(\.tar|\.parquet|_stats\.json)$/.test(f));
  await mapPool(files, 4, (f) => store.writeFromFile(f, path.join(dir, f)));
}
