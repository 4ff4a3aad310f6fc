// The annotate stage's own lines on stderr (endpoints down and back, batches submitted and read
// back), every known secret left out: a server's message may quote the key it was sent.
import { redact } from '../secrets/redact.ts';

export const annotateLog = (line: string): void => {
  process.stderr.write(redact(`[annotate] ${line}\n`));
};
