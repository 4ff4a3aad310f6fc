// An annotate worker: serves the annotate queue: workers that mostly wait on the model server, scaled on their own.
//   node --import tsx workers/annotate.ts --config <file> [--concurrency N] [--grace S]
// is `megapairs worker annotate ...`; it runs until SIGTERM or SIGINT (see src/runner/distributed/worker.ts).
import { main } from '../src/cli/main.ts';

process.exit(await main(['worker', 'annotate', ...process.argv.slice(2)]));
