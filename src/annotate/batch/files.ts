// Batch input files: request lines in the OpenAI Batch API form, split into JSONL files within the
// provider's limits (OpenAI: at most 50,000 requests and 200 MB a file, one model a file). A
// request is never split across files, and lines keep the order they were given in.
import type { RequestHash } from './request.ts';

/** The endpoint every line names: the one the online path calls. */
export const CHAT_COMPLETIONS_URL = '/v1/chat/completions';

export interface BatchLimits {
  /** Requests a file holds at most. */
  maxRequests: number;
  /** Bytes a file holds at most, newlines included. */
  maxBytes: number;
}

export const DEFAULT_LIMITS: BatchLimits = { maxRequests: 50_000, maxBytes: 200 * 1024 * 1024 };

/** One request as a file line: its JSON text (no newline) and its size in the file. */
export interface BatchLine {
  custom_id: RequestHash;
  model: string;
  text: string;
  /** UTF-8 bytes of the line with its newline. */
  bytes: number;
}

/** One input file's lines, all for one model. */
export interface BatchInputFile {
  model: string;
  lines: BatchLine[];
  bytes: number;
}

/**
 * The line of a request. The body is serialised as the online path's SDK does (JSON.stringify of
 * the same object), so the server answers the very request whose hash is the custom_id.
 */
export function batchLine(custom_id: RequestHash, body: { model: string }): BatchLine {
  const text = JSON.stringify({ custom_id, method: 'POST', url: CHAT_COMPLETIONS_URL, body });
  return { custom_id, model: body.model, text, bytes: Buffer.byteLength(text) + 1 };
}

/**
 * Lines grouped into files: per model (providers take one model a file), in the order given, a new
 * file begun when the next line would pass either limit. A line that alone passes maxBytes cannot
 * be sent in any file and is refused by name.
 */
export function splitIntoFiles(lines: readonly BatchLine[], limits: BatchLimits = DEFAULT_LIMITS): BatchInputFile[] {
  if (!(limits.maxRequests >= 1) || !(limits.maxBytes >= 1)) throw new Error(`batch file limits must be positive: ${JSON.stringify(limits)}`);
  const open = new Map<string, BatchInputFile>();
  const files: BatchInputFile[] = [];
  for (const line of lines) {
    if (line.bytes > limits.maxBytes) {
      throw new Error(`request ${line.custom_id} is ${line.bytes} bytes as a batch line, over the ${limits.maxBytes}-byte limit of a batch file`);
    }
    let file = open.get(line.model);
    if (!file || file.lines.length >= limits.maxRequests || file.bytes + line.bytes > limits.maxBytes) {
      file = { model: line.model, lines: [], bytes: 0 };
      open.set(line.model, file);
      files.push(file);
    }
    file.lines.push(line);
    file.bytes += line.bytes;
  }
  return files;
}

/** A file's bytes as uploaded: one line per request, each ending in a newline. */
export function fileContent(file: BatchInputFile): Buffer {
  return Buffer.from(file.lines.map((l) => `${l.text}\n`).join(''));
}
