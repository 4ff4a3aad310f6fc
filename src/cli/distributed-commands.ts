// The command-line side of the distributed runner: `worker`, `status`, `retry-failed`, `clean`, `dashboard`, and `run`
// when the runner is distributed. src/cli/main.ts parses the common options and dispatches here.
// The runner's modules (BullMQ, ioredis: about half a second to load) are imported by the
// commands that use them, so every other command starts without them.
import { parseArgs } from 'node:util';
import { UsageError } from './usage-error.ts';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createContext } from '../runner/context.ts';
import { reusedNote, runReport } from '../report/summary.ts';
import { checkEmbedding, preflight } from '../preflight/preflight.ts';
import { providerName, releaseSessions, sessionSettings } from '../encoders/sessions.ts';
import { applyGpuOption } from './gpu-option.ts';
import { DEFAULT_METRICS_HOST, serveMetrics } from '../metrics/server.ts';
import { redact } from '../secrets/redact.ts';
import { refuseIfHeld } from '../runner/lease.ts';

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  concurrency: { type: 'string' },
  grace: { type: 'string', default: '25' },
  run: { type: 'string' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string', default: DEFAULT_METRICS_HOST },
  gpu: { type: 'string' },
  force: { type: 'boolean' },
  port: { type: 'string', default: '3000' },
  host: { type: 'string', default: '127.0.0.1' },
} as const;

function metricsPortOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!(value !== '' && Number.isInteger(port) && port >= 0 && port < 65536))
    throw new UsageError(`--metrics-port must be a port number (0-65535; 0 picks a free one), not "${value}"`);
  return port;
}

/** http://host:port, an IPv6 address in brackets. */
const httpUrl = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

function configOf(args: string[]) {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  if (!values.config) throw new UsageError('needs --config <file>');
  return { config: loadConfig(values.config), file: values.config, values, positionals };
}

/**
 * `run` with the distributed runner: preflight (before anything is enqueued), enqueue, follow,
 * print the summary as the local runner does; the exit code is the summary's outcome.
 */
export async function runDistributedCommand(
  config: Config,
  configFile: string,
  quiet = false,
  checks = true,
  metricsPort?: string,
  metricsHost = DEFAULT_METRICS_HOST,
): Promise<number> {
  const port = metricsPortOf(metricsPort);
  // A local run of this name writing this work folder: the workers would write beside it.
  const ctx = createContext(config);
  await refuseIfHeld(ctx.work, config.run.name);
  if (checks) await preflight(ctx);
  const { runDistributed } = await import('../runner/distributed/follow.ts');
  const started = Date.now();
  const result = await runDistributed(ctx, {
    configFile,
    write: quiet ? () => {} : undefined,
    metricsPort: port,
    metricsHost,
    onMetrics: (p) => process.stderr.write(`metrics on ${httpUrl(metricsHost, p)}/metrics\n`),
  });
  process.stdout.write(runReport(result.summary, ctx.output, result.seconds ?? (Date.now() - started) / 1000));
  if (result.reused) process.stdout.write(reusedNote(ctx.output));
  return result.summary.outcome?.exit_code ?? 0;
}

/**
 * `worker <kind> --config <file> [--gpu N] [--concurrency N] [--grace S]`: serve until SIGTERM / SIGINT.
 * A worker that embeds first loads its models on its execution providers (and device), as
 * `run`'s preflight does, so one that cannot run them exits 2 at start, not on its first unit.
 */
export async function workerCommand(args: string[]): Promise<void> {
  const { config, values, positionals } = configOf(args);
  const kind = positionals[0];
  if (!kind) throw new UsageError('worker needs a kind: all, gpu, cpu, annotate, or one queue (e.g. mine)');
  const concurrency = values.concurrency ? Number(values.concurrency) : undefined;
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency > 0)) throw new UsageError('--concurrency must be a positive integer');
  const grace = Number(values.grace);
  if (!(grace >= 0)) throw new UsageError(`--grace must be a number of seconds, not "${values.grace}"`);
  const [{ startWorker }, { describeRedis }, { queuesOfKind }] = await Promise.all([
    import('../runner/distributed/worker.ts'),
    import('../runner/distributed/connection.ts'),
    import('../runner/distributed/kinds.ts'),
  ]);
  let queues: readonly string[];
  try {
    queues = queuesOfKind(kind);
  } catch (err) {
    throw new UsageError((err as Error).message); // a kind that does not exist is a usage error (exit 2)
  }
  const embeds = queues.includes('embed');
  // A worker that never loads a model ignores the device (one environment may serve every kind).
  applyGpuOption(config, values.gpu, embeds);
  const tag = `[worker ${kind} ${process.pid}]`;
  const log = (line: string) => process.stdout.write(redact(`${tag} ${line}\n`));
  // Metrics and /healthz answer from now on: while models load and while the worker waits for a run.
  const metricsPort = metricsPortOf(values['metrics-port']);
  const metrics = metricsPort === undefined ? undefined : await serveMetrics(metricsPort, {}, values['metrics-host']);
  if (metrics) log(`metrics on ${httpUrl(values['metrics-host']!, metrics.port)}/metrics, liveness at /healthz`);
  const ctx = createContext(config); // the process's one context: the worker serves its units under it
  let providers = '';
  if (embeds) {
    await preflight(ctx, [checkEmbedding]);
    // The unit threads load their own sessions: this thread's were only for the check.
    await releaseSessions();
    providers = `; encoders on ${sessionSettings(config).executionProviders.map(providerName).join(', ')}`;
  }
  const w = await startWorker(ctx, kind, { concurrency, graceMs: grace * 1000, log, metrics });
  const served = metrics ? `; metrics on ${httpUrl(values['metrics-host']!, metrics.port)}/metrics` : '';
  log(
    `ready: queues ${w.queues.join(', ')} of run ${config.run.name} (key ${w.run}) on ${describeRedis(config)}, ${concurrency ?? config.runner.concurrency} at once${providers}${served}`,
  );
  const signalled = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  // A refusal (the run restarted under a config this worker disagrees with) stops it, then exits 2.
  const refusal = await Promise.race([signalled.then(() => undefined), w.refused.catch((err: Error) => err)]);
  await w.stop();
  await metrics?.close();
  if (refusal) throw refusal;
}

export async function statusCommand(args: string[]): Promise<void> {
  const { config } = configOf(args);
  const { runStatus } = await import('../runner/distributed/status.ts');
  process.stdout.write(redact(await runStatus(config)) + '\n');
}

export async function retryFailedCommand(args: string[]): Promise<void> {
  const { config, file } = configOf(args);
  const { retryFailed } = await import('../runner/distributed/status.ts');
  const ids = await retryFailed(config);
  process.stdout.write(
    ids.length ? `requeued ${ids.length} unit(s): ${ids.join(', ')}\nfollow the run with: megapairs run --config ${file}\n` : 'no failed units\n',
  );
}

/** `clean --config <file> [--run NAME] [--force]`: remove a run's Redis keys (not its artifacts). */
export async function cleanCommand(args: string[]): Promise<void> {
  const { config, values } = configOf(args);
  if (values.run !== undefined) {
    if (!values.run) throw new UsageError('--run needs a run name');
    config.run.name = values.run;
  }
  const { cleanRunKeys } = await import('../runner/distributed/status.ts');
  const removed = await cleanRunKeys(config, values.force);
  process.stdout.write(`removed ${removed} Redis key(s) of run ${config.run.name} (prefix ${config.redis.prefix}); its artifacts are untouched\n`);
}

/** `dashboard --config <file> [--host H] [--port P]`: bull-board for the run's queues, until SIGTERM / SIGINT. */
export async function dashboardCommand(args: string[]): Promise<void> {
  const { config, values } = configOf(args);
  const port = Number(values.port);
  if (!(values.port !== '' && Number.isInteger(port) && port >= 0 && port < 65536))
    throw new UsageError(`--port must be a port number (0-65535; 0 picks a free one), not "${values.port}"`);
  const host = values.host!;
  const { serveDashboard, isLoopback, DASHBOARD_TOKEN_ENV } = await import('../runner/distributed/dashboard.ts');
  const token = process.env[DASHBOARD_TOKEN_ENV] || undefined;
  if (!token && !isLoopback(host))
    throw new UsageError(
      `--host ${host} opens the dashboard to anyone who reaches it: set ${DASHBOARD_TOKEN_ENV} (then every request needs it), or keep 127.0.0.1 and port-forward`,
    );
  const board = await serveDashboard(config, port, host, token);
  const url = `${httpUrl(host, board.port)}/`;
  const access = board.readOnly
    ? `read-only (set ${DASHBOARD_TOKEN_ENV} to allow actions)`
    : `needs the token from ${DASHBOARD_TOKEN_ENV}: sign in at ${url}login`;
  process.stdout.write(`dashboard of run ${config.run.name} at ${url} (queues under prefix ${config.redis.prefix}); ${access}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => void board.close().then(resolve);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
