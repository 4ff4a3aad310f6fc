// One S3 client per distinct set of settings in a process, shared by every s3:// storage (input,
// work, output), so they share one connection pool. Credentials are left to the SDK's default
// chain (environment, shared profile, SSO, web identity, IMDS): nothing secret passes through here.
import http from 'node:http';
import https from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../config/schema.ts';

export type S3ClientSettings = Pick<S3Settings, 'endpoint' | 'region' | 'force_path_style' | 'socket_timeout_ms'>;

const clients = new Map<string, S3Client>();

function regionFor(settings: S3ClientSettings): string | undefined {
  if (settings.region) return settings.region;
  if (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION) return process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION;
  // MinIO, Ceph and s3rver accept any region; AWS itself needs the real one (from the profile).
  return settings.endpoint ? 'us-east-1' : undefined;
}

export function s3Client(settings: S3ClientSettings): S3Client {
  const id = JSON.stringify([settings.endpoint, settings.region, settings.force_path_style, settings.socket_timeout_ms]);
  let client = clients.get(id);
  if (!client) {
    const agent = { keepAlive: true, maxSockets: 64 };
    client = new S3Client({
      endpoint: settings.endpoint,
      region: regionFor(settings),
      forcePathStyle: settings.force_path_style,
      // Retries are ours (retry.ts): they cover a body that drops mid-stream, which the SDK cannot.
      maxAttempts: 1,
      // The SDK's default CRC checksums on every upload are not understood by every S3-compatible
      // store; send and check them only where the API requires them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: 10_000,
        socketTimeout: settings.socket_timeout_ms,
        httpAgent: new http.Agent(agent),
        httpsAgent: new https.Agent(agent),
      },
    });
    clients.set(id, client);
  }
  return client;
}
