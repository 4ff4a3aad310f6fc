// The megapairs command line: run a config (locally or on Redis workers), serve a distributed run
// as a worker, export the product for training, build the sample corpus or the built-in models,
// and write the config's JSON Schema.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, configJsonSchema, loadConfig } from '../config/load.ts';
import { ensureBuiltinModels } from '../encoders/builtin.ts';
import { layout } from '../artifacts/layout.ts';
import { createContext } from '../runner/context.ts';
import { runLocal } from '../runner/local.ts';
import { cleanCommand, dashboardCommand, retryFailedCommand, runDistributedCommand, statusCommand, workerCommand } from './distributed-commands.ts';
import { EXPORT_USAGE, exportCommand } from './export-command.ts';
import { UsageError } from './usage-error.ts';
import { runReport, summarize } from '../runner/summary.ts';
import { buildSampleCorpus } from '../sample/openmoji.ts';

const USAGE = `megapairs <command> [options]

  run --config <file> [--runner local|distributed] [--metrics-port P]
                                         run the pipeline; reruns resume from complete artifacts
                                         (distributed: enqueue on Redis and follow to the end)
  worker <all|gpu|cpu|annotate|<stage>> --config <file> [--concurrency N] [--grace S] [--metrics-port P]
                                         serve the distributed run's queues until SIGTERM
                                         (--metrics-port: Prometheus text at :P/metrics)
  status --config <file>                 each stage's waiting, active, completed, failed units
  retry-failed --config <file>           requeue the units that failed all their attempts
  clean --config <file> [--run NAME] [--force]
                                         remove a distributed run's Redis keys (not its artifacts)
  dashboard --config <file> [--port 3000]
                                         serve bull-board, a web UI of the run's queues and jobs
  ${EXPORT_USAGE}
  sample [--out data/sample] [--limit N] [--shard-size N]
                                         build the openmoji demo corpus (webdataset layout)
  models [--out models/builtin]          write the built-in ONNX encoders and tokenizer
  schema [--out <file>]                  print or write the config's JSON Schema
`;

async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, runner: { type: 'string' }, quiet: { type: 'boolean' }, 'metrics-port': { type: 'string' } } });
  if (!values.config) throw new UsageError('run needs --config <file>');
  const config = loadConfig(values.config);
  if (values.runner) config.runner.kind = values.runner as typeof config.runner.kind;
  if (config.runner.kind === 'distributed') return runDistributedCommand(config, values.config, values.quiet, values['metrics-port']);
  if (values['metrics-port'] !== undefined) throw new UsageError('--metrics-port is for distributed runs (the local runner prints its progress)');
  if (config.runner.kind !== 'local') throw new UsageError(`unknown runner "${config.runner.kind}"; use --runner local or --runner distributed`);
  const ctx = createContext(config);
  const started = Date.now();
  const reports = await runLocal(ctx);
  const summary = await summarize(ctx, reports);
  await ctx.output.write(layout.summary(), JSON.stringify(summary, null, 1));
  process.stdout.write(runReport(summary, ctx.output, (Date.now() - started) / 1000));
}

async function sample(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: 'string', default: 'data/sample' }, limit: { type: 'string' }, 'shard-size': { type: 'string' } } });
  const started = Date.now();
  const result = await buildSampleCorpus({
    outDir: path.resolve(values.out!),
    limit: values.limit ? Number(values.limit) : undefined,
    shardSize: values['shard-size'] ? Number(values['shard-size']) : undefined,
    onProgress: (done, total) => process.stderr.isTTY && process.stderr.write(`\r[sample  ] ${done}/${total} images`),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  process.stdout.write(`sample corpus: ${result.images} images in ${result.shards} shards at ${values.out} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
}

async function models(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: 'string', default: 'models/builtin' } } });
  const paths = await ensureBuiltinModels(path.resolve(values.out!));
  for (const [name, file] of Object.entries(paths)) process.stdout.write(`${name.padEnd(10)} ${file}\n`);
}

async function schema(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: 'string' } } });
  const text = JSON.stringify(configJsonSchema(), null, 2) + '\n';
  if (values.out) await writeFile(values.out, text);
  else process.stdout.write(text);
}

const commands: Record<string, (args: string[]) => Promise<void>> = {
  run,
  sample,
  models,
  schema,
  worker: workerCommand,
  status: statusCommand,
  'retry-failed': retryFailedCommand,
  clean: cleanCommand,
  dashboard: dashboardCommand,
  export: exportCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const fn = command ? commands[command] : undefined;
  if (!fn) {
    process.stderr.write(command && command !== '--help' && command !== 'help' ? `unknown command "${command}"\n\n${USAGE}` : USAGE);
    return command && command !== '--help' && command !== 'help' ? 2 : 0;
  }
  try {
    await fn(rest);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    process.stderr.write(`megapairs ${command}: ${(err as Error).message}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('src/cli/main.ts')) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
