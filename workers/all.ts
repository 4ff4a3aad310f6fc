// An all worker: serves every queue: one machine, or a small run.
//   node --import tsx workers/all.ts --config <file> [--concurrency N] [--grace S]
// is `megapairs worker all ...`; it runs until SIGTERM or SIGINT (see src/runner/distributed/worker.ts).
import { main } from '../src/cli/main.ts';

process.exit(await main(['worker', 'all', ...process.argv.slice(2)]));
