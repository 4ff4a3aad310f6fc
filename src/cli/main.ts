// The megapairs command line: run a config (locally or on Redis workers), serve a distributed run
// as a worker, export the product for training, build the sample corpus or the built-in models,
// and write the config's JSON Schema.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, configJsonSchema, loadConfig } from '../config/load.ts';
import { formatDryRun, dryRunPlan } from '../provenance/dry-run.ts';
import { collectGarbage } from '../provenance/gc.ts';
import { resolveRun } from '../provenance/resolve-run.ts';
import type { StageKeys } from '../core/keys.ts';
import type { StageContext } from '../core/stage.ts';
import { createContext } from '../runner/context.ts';
import { runLocal, UnitError } from '../runner/local.ts';
import type { StageReport } from '../core/stage-report.ts';
import { prepareRetry } from '../runner/retry-local.ts';
import { preflight, PreflightError } from '../preflight/preflight.ts';
import { describeError } from '../util/error-chain.ts';
import type { Config } from '../config/schema.ts';
import { cleanCommand, dashboardCommand, retryFailedCommand, runDistributedCommand, statusCommand, workerCommand } from './distributed-commands.ts';
import { EXPORT_USAGE, exportCommand } from './export-command.ts';
import { PLAN_USAGE, planCommand } from './plan-command.ts';
import { applyGpuOption } from './gpu-option.ts';
import { UsageError } from './usage-error.ts';
import { reusedNote, runReport, saveSummary, summarize } from '../report/summary.ts';
import { acquireRunLease, LeaseHeldError } from '../runner/lease.ts';
import { redact } from '../secrets/redact.ts';

// Each command's usage, for `megapairs <command> --help` and, all together, for `megapairs`.
const HELP: Record<string, string> = {
  run: `run --config <file> [--runner local|distributed] [--gpu N] [--no-preflight] [--quiet] [--dry-run] [--metrics-port P] [--metrics-host 127.0.0.1]
                                         run the pipeline; reruns reuse every artifact whose key
                                         (what decides it) is unchanged and resume the rest
                                         (distributed: enqueue on Redis and follow to the end);
                                         --dry-run: say per stage what would be reused and why;
                                         --gpu N: cuda in encoders.execution_providers is cuda:N
                                         (also $MEGAPAIRS_GPU);
                                         preflight checks storage, models and the annotator first
                                         exit 0 complete, 3 complete but over run.max_failure_share
                                         or no triples, 1 a unit failed, 2 bad config or preflight,
                                         or another run of this name holds the work folder`,
  gc: `gc --config <file> [--config <file>...] [--dry-run]
                                         remove work artifacts no given config refers to`,
  worker: `worker <all|gpu|cpu|annotate|<stage>> --config <file> [--gpu N] [--concurrency N] [--grace S] [--metrics-port P] [--metrics-host 127.0.0.1]
                                         serve the distributed run's queues until SIGTERM
                                         (--gpu N: this worker's device, cuda -> cuda:N, also
                                         $MEGAPAIRS_GPU; a worker that embeds loads its models
                                         first and exits 2 if they do not load there;
                                         --metrics-port: Prometheus text at :P/metrics and liveness
                                         at :P/healthz from the start, on --metrics-host)`,
  clean: `clean --config <file> [--run NAME] [--force]
                                         remove a distributed run's Redis keys (not its artifacts)`,
  dashboard: `dashboard --config <file> [--host 127.0.0.1] [--port 3000]
                                         serve bull-board, a web UI of the run's queues and jobs:
                                         read-only unless $MEGAPAIRS_DASHBOARD_TOKEN is set, and then
                                         every request needs that token (a host other than
                                         127.0.0.1 needs it too)`,
  status: `status --config <file>                 each stage's waiting, active, completed, failed units`,
  'retry-failed': `retry-failed --config <file> [--no-preflight]
                                         run again the units that failed and those whose ledger
                                         entries are retryable (distributed: requeue failed units)`,
  export: EXPORT_USAGE,
  plan: PLAN_USAGE,
  sample: `sample [--out data/sample] [--limit N] [--shard-size N]
                                         build the openmoji demo corpus (webdataset layout)`,
  models: `models [--out models/builtin]          write the built-in ONNX encoders and tokenizer`,
  schema: `schema [--out <file>]                  print or write the config's JSON Schema`,
};

const USAGE = `megapairs <command> [options]     (megapairs <command> --help for one command)

${Object.values(HELP)
  .map((h) => `  ${h}`)
  .join('\n')}
`;

/**
 * Runs the local pipeline to its end or its first failed unit; the summary (and exit code) comes
 * from the files. After preflight it holds the run's lease (src/runner/lease.ts): a second writer
 * of the run stops there, exit 2. `first` runs under the lease before the stages (retry-failed
 * forgets what must be made again).
 */
async function runLocalPipeline(config: Config, checks: boolean, command = 'megapairs run', first?: () => Promise<void>): Promise<number> {
  const ctx = createContext(config);
  if (checks) await preflight(ctx);
  const lease = await acquireRunLease(ctx.work, config.run.name, command);
  try {
    await first?.();
    const started = Date.now();
    let reports: StageReport[] = [];
    let failure: Error | undefined;
    try {
      reports = await runLocal(ctx);
    } catch (err) {
      if (!(err instanceof UnitError)) throw err;
      failure = err;
    }
    const fresh = await summarize(ctx, reports);
    if (failure && fresh.outcome.exit_code !== 1)
      fresh.outcome = { ...fresh.outcome, exit_code: 1, complete: false, message: `incomplete: ${failure.message}` };
    const { summary, reused } = await saveSummary(ctx, fresh);
    process.stdout.write(runReport(summary, ctx.output, (Date.now() - started) / 1000));
    if (reused) process.stdout.write(reusedNote(ctx.output));
    if (failure)
      process.stderr.write(
        `megapairs run: ${redact(failure.message)}\nfix the cause and rerun (complete units are kept), or: megapairs retry-failed --config <file>\n`,
      );
    return summary.outcome.exit_code;
  } finally {
    await lease.release();
  }
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      runner: { type: 'string' },
      quiet: { type: 'boolean' },
      'no-preflight': { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      gpu: { type: 'string' },
    },
  });
  if (!values.config) throw new UsageError('run needs --config <file>');
  const config = loadConfig(values.config);
  applyGpuOption(config, values.gpu);
  if (values['dry-run']) {
    process.stdout.write(formatDryRun(await dryRunPlan(createContext(config)), config.run.name));
    return 0;
  }
  if (values.runner) config.runner.kind = values.runner as typeof config.runner.kind;
  const checks = !values['no-preflight'];
  if (config.runner.kind === 'distributed')
    return runDistributedCommand(config, values.config, values.quiet, checks, values['metrics-port'], values['metrics-host']);
  if (values['metrics-port'] !== undefined || values['metrics-host'] !== undefined)
    throw new UsageError('--metrics-port is for distributed runs (the local runner prints its progress)');
  if (config.runner.kind !== 'local') throw new UsageError(`unknown runner "${config.runner.kind}"; use --runner local or --runner distributed`);
  return runLocalPipeline(config, checks);
}

/** `retry-failed` for a local run: forget what must be made again, then run as `run` does. */
async function retryFailed(args: string[]): Promise<number | void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, runner: { type: 'string' }, 'no-preflight': { type: 'boolean' } } });
  if (!values.config) throw new UsageError('retry-failed needs --config <file>');
  const config = loadConfig(values.config);
  if ((values.runner ?? config.runner.kind) === 'distributed') return retryFailedCommand(['--config', values.config]);
  // Preflight comes before anything is forgotten.
  return runLocalPipeline(config, !values['no-preflight'], 'megapairs retry-failed', async () => {
    const plan = await prepareRetry(createContext(config));
    process.stdout.write(
      plan.units.length
        ? `retrying ${plan.units.length} unit(s): ${plan.units.join(', ')} (${plan.forgotten.length} artifact(s) derived from them to make again)\n`
        : 'no failed or retryable units; running to make sure the run is complete\n',
    );
  });
}

/** `gc`: the keys of every given config are kept; other keys' artifacts in their work storage go. */
async function gc(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c', multiple: true }, 'dry-run': { type: 'boolean' } } });
  if (!values.config?.length) throw new UsageError('gc needs --config <file> (one or more: the configs whose artifacts to keep)');
  const byWork = new Map<string, { ctx: StageContext; keys: StageKeys[] }>();
  for (const file of values.config) {
    const ctx = createContext(loadConfig(file));
    await resolveRun(ctx);
    const entry = byWork.get(ctx.work.root) ?? { ctx, keys: [] };
    entry.keys.push(ctx.keys!);
    byWork.set(ctx.work.root, entry);
  }
  for (const { ctx, keys } of byWork.values()) {
    const r = await collectGarbage(ctx.work, keys, { dryRun: values['dry-run'] });
    const verb = values['dry-run'] ? 'would remove' : 'removed';
    for (const f of r.removed) process.stdout.write(`${verb} ${ctx.work.uri(f.folder)} (${f.files} files)\n`);
    process.stdout.write(`${ctx.work.root}: ${r.removed.length} stale key folder(s) ${verb}, ${r.kept.length} kept\n`);
  }
}

async function sample(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { out: { type: 'string', default: 'data/sample' }, limit: { type: 'string' }, 'shard-size': { type: 'string' } },
  });
  const count = (name: string, v: string | undefined) => {
    if (v !== undefined && !(Number.isInteger(Number(v)) && Number(v) > 0)) throw new UsageError(`--${name} must be a positive whole number, not "${v}"`);
    return v === undefined ? undefined : Number(v);
  };
  const limit = count('limit', values.limit);
  const shardSize = count('shard-size', values['shard-size']);
  const started = Date.now();
  // Demo-only (and the openmoji package is a dev dependency): loaded by this command alone.
  const { buildSampleCorpus } = await import('../sample/openmoji.ts');
  const result = await buildSampleCorpus({
    outDir: path.resolve(values.out!),
    limit,
    shardSize,
    onProgress: (done, total) => process.stderr.isTTY && process.stderr.write(`\r[sample  ] ${done}/${total} images`),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  process.stdout.write(`sample corpus: ${result.images} images in ${result.shards} shards at ${values.out} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
}

async function models(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: 'string', default: 'models/builtin' } } });
  const { ensureBuiltinModels } = await import('../encoders/builtin.ts');
  const paths = await ensureBuiltinModels(path.resolve(values.out!));
  for (const [name, file] of Object.entries(paths)) process.stdout.write(`${name.padEnd(10)} ${file}\n`);
}

async function schema(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: 'string' } } });
  const text = JSON.stringify(configJsonSchema(), null, 2) + '\n';
  if (values.out) await writeFile(values.out, text);
  else process.stdout.write(text);
}

const commands: Record<string, (args: string[]) => Promise<number | void>> = {
  run,
  gc,
  sample,
  models,
  schema,
  worker: workerCommand,
  status: statusCommand,
  'retry-failed': retryFailed,
  clean: cleanCommand,
  dashboard: dashboardCommand,
  export: exportCommand,
  plan: planCommand,
};

const isHelp = (a: string | undefined) => a === '--help' || a === '-h' || a === 'help';

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (isHelp(command)) {
    process.stdout.write(USAGE);
    return 0;
  }
  const fn = commands[command];
  if (!fn) {
    process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (rest.some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(`megapairs ${HELP[command]}\n`);
    return 0;
  }
  try {
    return (await fn(rest)) ?? 0;
  } catch (err) {
    // A worker whose config decides other artifacts than the run's (run-identity.ts) is a config error too.
    if (err instanceof ConfigError || err instanceof PreflightError || err instanceof LeaseHeldError || (err as Error).name === 'RunMismatchError') {
      process.stderr.write(`${redact((err as Error).message)}\n`);
      return 2;
    }
    // parseArgs: an unknown option or a missing value is a usage error too.
    if (err instanceof UsageError || String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${redact((err as Error).message)}\n\nmegapairs ${HELP[command]}\n`);
      return 2;
    }
    process.stderr.write(`megapairs ${command}: ${redact(describeError(err))}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('src/cli/main.ts')) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
