// A real S3-protocol server for tests: s3rver in a child process on 127.0.0.1, a free port, a temp
// folder. It runs with --openssl-legacy-provider because its listing continuation tokens use DES,
// which Node 20's OpenSSL 3 only offers through the legacy provider.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './helpers.ts';

export interface S3TestServer {
  endpoint: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** s3rver's built-in account; the SDK's default credential chain reads these variables. */
export function useTestCredentials(): void {
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
