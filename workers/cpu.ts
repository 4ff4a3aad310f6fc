// A cpu worker: serves every stage that needs neither a GPU nor a model endpoint, and the control queue that advances the run (src/runner/distributed/kinds.ts).
//   node --import tsx workers/cpu.ts --config <file> [--concurrency N] [--grace S]
// is `megapairs worker cpu ...`; it runs until SIGTERM or SIGINT (see src/runner/distributed/worker.ts).
import { main } from '../src/cli/main.ts';

process.exit(await main(['worker', 'cpu', ...process.argv.slice(2)]));
