// What a batch says about each request: a line of its output or error file, read as the online path
// reads a reply (openai.ts: sendOnce, classifyRequestError), so a request gets the same verdict
// whichever way it went. Lines come from outside: each field is checked before it is believed.
import type { CachedCompletion } from '../request-cache.ts';
import { excerpt } from '../text.ts';
import type { RequestHash } from './request.ts';

/**
 * The online path's classes: `client_error` is the item's own fault (4xx; 408 and 409 worth
 * another try), `rate_limited` and `server_error` (5xx, a 200 that is not a chat completion, a line
 * the server could not run) the environment's, as is `endpoint_refused` (401, 403, 404: a wrong
 * key or model, which every request meets alike). `unfinished`: the batch expired or was
 * cancelled before it ran the request, or its files do not account for it.
 */
export type FailureKind = 'client_error' | 'rate_limited' | 'server_error' | 'endpoint_refused' | 'unfinished';

export interface BatchFailure {
  /** The item's fault goes to the ledger with its reason; the environment's fails the unit. */
  owner: 'item' | 'environment';
  kind: FailureKind;
  /** The ledger reason of an item's fault, as the online path names it. */
  reason: string;
  status?: number;
  /** What went wrong, in the server's words (bounded). */
  detail: string;
  /** Whether another submission may get a reply. */
  retryable: boolean;
}

export type LineVerdict = { ok: true; completion: CachedCompletion } | { ok: false; failure: BatchFailure };

/** A result line that could be read: which request, and what became of it. */
export interface ResultLine {
  custom_id: RequestHash;
  verdict: LineVerdict;
}

/** The failure of a request the batch did not run, or whose result its files do not hold. */
export function unfinished(detail: string): BatchFailure {
  return { owner: 'environment', kind: 'unfinished', reason: 'batch_unfinished', detail, retryable: true };
}

const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/** The completion of a 200 body, taken as sendOnce takes it; undefined when the body is no chat completion. */
function completionOf(body: unknown): CachedCompletion | undefined {
  if (!isObject(body)) return undefined;
  const choice = Array.isArray(body.choices) ? body.choices[0] : undefined;
  const content = choice?.message?.content ?? '';
  const finish = choice?.finish_reason ?? '';
  if (typeof content !== 'string' || typeof finish !== 'string') return undefined;
  return { content, finish_reason: finish, prompt_tokens: count(body.usage?.prompt_tokens), completion_tokens: count(body.usage?.completion_tokens) };
}

/** The error message a non-200 body carries ({error: {message}}), else the body itself, bounded. */
function errorMessage(body: unknown): string {
  if (isObject(body) && isObject(body.error) && typeof body.error.message === 'string') return excerpt(body.error.message);
  return excerpt(typeof body === 'string' ? body : JSON.stringify(body ?? null));
}

/** The verdict on a reply the server gave a request: as classifyRequestError sorts an HTTP status. */
export function verdictOfResponse(status: number, body: unknown): LineVerdict {
  if (status === 200) {
    const completion = completionOf(body);
    if (completion) return { ok: true, completion };
    return {
      ok: false,
      failure: {
        owner: 'environment',
        kind: 'server_error',
        reason: 'server_error',
        status,
        detail: `reply body is not a chat completion: ${errorMessage(body)}`,
        retryable: true,
      },
    };
  }
  const detail = `HTTP ${status}: ${errorMessage(body)}`;
  if (status === 429) return { ok: false, failure: { owner: 'environment', kind: 'rate_limited', reason: 'rate_limited', status, detail, retryable: true } };
  if (status >= 500) return { ok: false, failure: { owner: 'environment', kind: 'server_error', reason: 'server_error', status, detail, retryable: true } };
  if (status === 401 || status === 403 || status === 404) {
    return { ok: false, failure: { owner: 'environment', kind: 'endpoint_refused', reason: 'endpoint_refused', status, detail, retryable: false } };
  }
  // The request's own fault, as online: an AnnotationError('http_error'); 408 and 409 are tried again.
  return { ok: false, failure: { owner: 'item', kind: 'client_error', reason: 'http_error', status, detail, retryable: status === 408 || status === 409 } };
}

/** Error codes a provider gives the requests a batch never ran. */
const NOT_RUN = new Set(['batch_expired', 'batch_cancelled']);

/**
 * One line of an output or error file: `{id, custom_id, response: {status_code, request_id, body},
 * error}`. Undefined when the line is not of that form (the caller counts it; its request, found
 * in no other line, is unfinished).
 */
export function readResultLine(text: string): ResultLine | undefined {
  let line: unknown;
  try {
    line = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(line) || typeof line.custom_id !== 'string') return undefined;
  const { custom_id, response, error } = line;
  if (isObject(response) && Number.isInteger(response.status_code)) return { custom_id, verdict: verdictOfResponse(response.status_code, response.body) };
  if (isObject(error)) {
    const code = typeof error.code === 'string' ? error.code : 'error';
    const detail = `${code}: ${excerpt(typeof error.message === 'string' ? error.message : '')}`;
    if (NOT_RUN.has(code)) return { custom_id, verdict: { ok: false, failure: unfinished(detail) } };
    // A request the server failed to run (a dropped engine, a timeout): the environment's.
    return { custom_id, verdict: { ok: false, failure: { owner: 'environment', kind: 'server_error', reason: 'server_error', detail, retryable: true } } };
  }
  return undefined;
}
