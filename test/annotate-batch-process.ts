// A process of the batch kill tests (annotate-batch.test.ts): sends `count` requests by batch to
// the server at argv[2], with the request cache and the batch journal in the work folder argv[3],
// at most argv[5] requests a file. Prints its report as one JSON line when every batch has ended,
// so a test can kill it (-9) anywhere before and run it again.
import { BatchClient } from '../src/annotate/batch/client.ts';
import { runBatches } from '../src/annotate/batch/driver.ts';
import { BatchJournal } from '../src/annotate/batch/journal.ts';
import { RequestCache } from '../src/annotate/request-cache.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { chatRequests } from './annotate-batch-requests.ts';

const [url, workDir, count, maxRequests] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
const work = new LocalStorage(workDir);
const { outcomes, report } = await runBatches({
  requests: chatRequests(count),
  cache: new RequestCache(work),
  journal: new BatchJournal(work),
  client: new BatchClient({ baseURL: url }),
  settings: { pollIntervalMs: 25, limits: { maxRequests, maxBytes: 200 * 1024 * 1024 }, log: () => {} },
});
process.stdout.write(`${JSON.stringify({ report, completions: outcomes.filter((o) => 'completion' in o).length })}\n`);
