// A request sent by batch: the chat-completions body the online path would send, under the hash the
// request cache keeps its reply by. The hash is the line's custom_id, so a reply read back from a
// batch output file lands where the online path looks for it.
import { requestHash } from '../request-cache.ts';

/** sha256 of the body as JSON (request-cache.ts): the reply's key in the cache and the batch line's custom_id. */
export type RequestHash = string;

/** The fields every body has; the rest (messages, sampling, response_format) pass through untouched. */
export interface ChatBody {
  model: string;
  messages: unknown[];
  [key: string]: unknown;
}

export interface BatchRequest {
  custom_id: RequestHash;
  body: ChatBody;
}

/** The request of a body, as the online path builds it: keys in the order the code set them. */
export function batchRequest(body: ChatBody): BatchRequest {
  return { custom_id: requestHash(body), body };
}
