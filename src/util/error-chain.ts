// An error in the cause's own words: its message, then each cause's (`err.cause`, and every error
// of an AggregateError), with the errno code (ECONNREFUSED, ENOTDIR, ...) and an HTTP status and a
// body excerpt where the error carries them. "fetch failed" alone says nothing; "fetch failed:
// connect ECONNREFUSED 127.0.0.1:9 (ECONNREFUSED)" says what to fix. Used by the ledger and the CLI.

const BODY_EXCERPT = 300;

type ErrorLike = Error & {
  code?: unknown;
  status?: unknown;
  statusCode?: unknown;
  $metadata?: { httpStatusCode?: number };
  body?: unknown;
  error?: unknown;
  errors?: unknown[];
};

function excerpt(body: unknown): string | undefined {
  if (body === undefined || body === null || body === '') return undefined;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  if (!text) return undefined;
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > BODY_EXCERPT ? `${flat.slice(0, BODY_EXCERPT)}...` : flat;
}

/** One error's own words, without its causes: message, errno code, HTTP status and body. */
function ownWords(e: ErrorLike): string {
  let text = e.message || e.name || 'error';
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code && !text.includes(code)) text += ` (${code})`;
  const status = [e.status, e.statusCode, e.$metadata?.httpStatusCode].find((s) => typeof s === 'number');
  if (status !== undefined && !text.includes(String(status))) text += ` (HTTP ${status})`;
  const body = excerpt(e.body ?? (typeof e.error === 'object' || typeof e.error === 'string' ? e.error : undefined));
  if (body && !text.includes(body)) text += `: ${body}`;
  return text;
}

/** The error and its causes, outermost first, each part once ("a: b: c"). */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  const walk = (e: unknown, depth: number): void => {
    if (e === undefined || e === null || seen.has(e) || depth > 8) return;
    seen.add(e);
    if (!(e instanceof Error)) {
      const text = typeof e === 'string' ? e : (excerpt(e) ?? String(e));
      if (!parts.some((p) => p.includes(text))) parts.push(text);
      return;
    }
    const words = ownWords(e as ErrorLike);
    // A wrapper often repeats its cause's message ("unit failed: <cause>"): keep each part once.
    if (!parts.some((p) => p.includes(words))) parts.push(words);
    const errors = (e as ErrorLike).errors;
    if (Array.isArray(errors)) for (const inner of errors) walk(inner, depth + 1);
    walk((e as ErrorLike).cause, depth + 1);
  };
  walk(err, 0);
  // "Connection error.: fetch failed" reads better without the inner full stop.
  return parts.map((p, i) => (i < parts.length - 1 ? p.replace(/\.$/, '') : p)).join(': ');
}
