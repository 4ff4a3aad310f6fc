// A gpu worker: serves the embed queue: GPU nodes (set MEGAPAIRS_EXECUTION_PROVIDERS=cuda,cpu).
//   node --import tsx workers/gpu.ts --config <file> [--concurrency N] [--grace S]
// is `megapairs worker gpu ...`; it runs until SIGTERM or SIGINT (see src/runner/distributed/worker.ts).
import { main } from '../src/cli/main.ts';

process.exit(await main(['worker', 'gpu', ...process.argv.slice(2)]));
