// A small, dependency-free tar reader and writer for webdataset shards (img2dataset output).
// The reader streams: it holds the current member and at most one source chunk besides, and it
// reports where every member's data sits in the file so a later stage can fetch exactly that
// member with one ranged read instead of re-reading the shard.
import type { Readable, Writable } from 'node:stream';

const BLOCK = 512;

export interface TarMember {
  /** The member's full path (ustar prefix, GNU long name and pax `path` applied), as the archive says: untrusted. */
  name: string;
  /** As its header (or pax `size`) claims: a lying header is found out when the stream ends first. */
  size: number;
  /** Byte offset of the member's own header (after any long-name / pax headers before it). */
  headerOffset: number;
  /** Byte offset of the member's data in the tar file: ranged read (dataOffset, size) gives `data`. */
  dataOffset: number;
}

export interface TarEntry extends TarMember {
  data: Buffer;
}

/** A member whose bytes the caller chose not to read (TarReadOptions.read): streamed past, never held. */
export interface UnreadTarEntry extends TarMember {
  data?: undefined;
}

export interface TarReadOptions {
  /**
   * Whether to read a member's bytes, by its name and the size its header claims; false streams
   * past them without holding them, so a huge member (or a header that claims one) costs no memory.
   */
  read: (name: string, size: number) => boolean;
}

/** Long-name and pax headers hold a name and a few records: one larger is an attack or garbage, not read. */
const MAX_META_BYTES = 1024 * 1024;

/** A corrupt or truncated archive; `where` names the file, `offset` the byte where it went wrong. */
export class TarError extends Error {
  /** The archive ends early: a copy still under way or cut short may yet be whole, unlike a bad header. */
  readonly truncated: boolean;
  constructor(
    readonly where: string,
    readonly offset: number,
    problem: string,
  ) {
    super(`${where}: ${problem} at byte offset ${offset}`);
    this.name = 'TarError';
    this.truncated = problem.includes('truncated tar');
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Pulls exact byte counts out of a chunked source, tracking the absolute position. */
class ByteSource {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  position = 0;

  constructor(private readonly iterator: AsyncIterator<Buffer | Uint8Array | string>) {}

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.done) {
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        break;
      }
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
  }

  /** Exactly n bytes in a fresh buffer, or fewer (what was left) when the source ends first. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const take = Math.min(n, this.buffered);
    const out = Buffer.allocUnsafe(take);
    let filled = 0;
    while (filled < take) {
      const head = this.chunks[0];
      const part = Math.min(head.length, take - filled);
      head.copy(out, filled, 0, part);
      filled += part;
      if (part === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(part);
    }
    this.buffered -= take;
    this.position += take;
    return out;
  }

  /** Discards up to n bytes without gathering them; returns how many were discarded. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0) {
        await this.fill(1);
        if (this.buffered === 0) break;
      }
      const head = this.chunks[0];
      const part = Math.min(head.length, left);
      if (part === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(part);
      this.buffered -= part;
      this.position += part;
      left -= part;
    }
    return n - left;
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

interface Header {
  name: string;
  size: number;
  type: string;
}

function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

/** Octal, or GNU base-256 (high bit of the first byte set) for values that do not fit in octal. */
function numeric(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if (field[0] & 0x80) {
    let value = field[0] & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + field[i];
    return value;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/g, '')
    .replace(/^[\0 ]+/, '');
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  const stored = numeric(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte; // some old writers summed signed chars
  }
  return stored === unsigned || stored === signed;
}

function parseHeader(block: Buffer): Header {
  const magic = block.toString('latin1', 257, 263);
  let name = cString(block, 0, 100);
  // POSIX ustar keeps a path prefix at 345; GNU ("ustar  ") uses that area for other fields.
  if (magic === 'ustar\u0000') {
    const prefix = cString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return { name, size: numeric(block, 124, 12), type: String.fromCharCode(block[156] || 0x30) };
}

/** pax records: "<length> <key>=<value>\n", length counting the whole record. */
function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = parseInt(data.toString('latin1', at, space), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.toString('utf8', space + 1, at + length - 1); // drop the trailing newline
    const eq = record.indexOf('=');
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return records;
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * The regular-file members of a tar stream, in order. Directories, links and other special entries
 * are skipped; GNU long names ('L') and pax headers ('x': path, size) apply to the entry after them,
 * pax global headers ('g') are ignored. Ends at the end-of-archive zero block. A bad header
 * checksum, a long-name or pax header over 1 MiB, or a stream that ends inside a header or a member
 * (or without the end-of-archive blocks), throws TarError naming `where` and the offset, after
 * every complete member before the fault has been yielded. With `opts.read`, members it declines
 * come without their data.
 */
export function readTarEntries(source: AsyncIterable<Buffer> | Readable, where: string): AsyncIterable<TarEntry>;
export function readTarEntries(source: AsyncIterable<Buffer> | Readable, where: string, opts: TarReadOptions): AsyncIterable<TarEntry | UnreadTarEntry>;
export async function* readTarEntries(
  source: AsyncIterable<Buffer> | Readable,
  where: string,
  opts?: TarReadOptions,
): AsyncIterable<TarEntry | UnreadTarEntry> {
  const input = new ByteSource((source as AsyncIterable<Buffer>)[Symbol.asyncIterator]());
  let longName: string | undefined;
  let pax = new Map<string, string>();
  try {
    for (;;) {
      const headerOffset = input.position;
      const block = await input.read(BLOCK);
      if (block.length === 0) {
        throw new TarError(where, headerOffset, 'archive ends without its end-of-archive blocks (truncated tar)');
      }
      if (block.length < BLOCK) {
        throw new TarError(where, headerOffset, `stream ends inside a tar header (${block.length} of ${BLOCK} bytes; truncated tar)`);
      }
      if (block.every((b) => b === 0)) return; // end of archive: what follows is zero padding
      if (!checksumOk(block)) throw new TarError(where, headerOffset, 'bad tar header checksum');

      const header = parseHeader(block);
      const isMeta = header.type === 'L' || header.type === 'x' || header.type === 'g';
      const isFile = header.type === '0' || header.type === '7';
      const size = !isMeta && pax.has('size') ? Number(pax.get('size')) : header.size;
      if (!Number.isSafeInteger(size) || size < 0) throw new TarError(where, headerOffset, 'bad size in tar header');
      const dataOffset = input.position;
      if (isMeta && size > MAX_META_BYTES) {
        throw new TarError(where, headerOffset, `a type '${header.type}' header of ${size} bytes (over the ${MAX_META_BYTES} a name or pax records need)`);
      }
      const name = isFile ? (pax.get('path') ?? longName ?? header.name) : '';
      const cutShort = (got: number) =>
        new TarError(
          where,
          dataOffset + got,
          `stream ends inside ${isFile ? `member ${JSON.stringify(name)}` : `${header.type} header`} (${got} of ${size} data bytes from offset ${dataOffset}; truncated tar)`,
        );

      if (isFile && opts && !opts.read(name, size)) {
        longName = undefined;
        pax = new Map();
        const skipped = await input.skip(size);
        if (skipped < size) throw cutShort(skipped);
        yield { name, size, headerOffset, dataOffset };
      } else if (isMeta || isFile) {
        const data = await input.read(size);
        if (data.length < size) throw cutShort(data.length);
        if (header.type === 'L') {
          longName = cString(data, 0, data.length);
        } else if (header.type === 'x') {
          pax = parsePax(data);
        } else if (isFile) {
          longName = undefined;
          pax = new Map();
          yield { name, size, headerOffset, dataOffset, data };
        }
      } else {
        // Directories, links, devices, GNU 'K' long link names...: not members we serve.
        longName = undefined;
        pax = new Map();
        const skipped = await input.skip(size);
        if (skipped < size) throw new TarError(where, dataOffset + skipped, `stream ends inside a type '${header.type}' entry (truncated tar)`);
      }
      const pad = padding(size);
      const skipped = await input.skip(pad);
      if (skipped < pad) throw new TarError(where, input.position, 'stream ends inside the padding after a member (truncated tar)');
    }
  } finally {
    await input.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, the form every reader accepts
  return value.toString(8).padStart(width - 1, '0') + '\u0000';
}

function encodeHeader(name: Buffer, prefix: Buffer, size: number, type: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  name.copy(block, 0);
  block.write(octal(0o644, 8), 100, 'latin1'); // mode
  block.write(octal(0, 8), 108, 'latin1'); // uid
  block.write(octal(0, 8), 116, 'latin1'); // gid
  block.write(octal(size, 12), 124, 'latin1');
  block.write(octal(0, 12), 136, 'latin1'); // mtime 0: deterministic output
  block.write(type, 156, 'latin1');
  block.write('ustar\u000000', 257, 'latin1'); // POSIX magic + version "00"
  block.write(octal(0, 8), 329, 'latin1'); // devmajor
  block.write(octal(0, 8), 337, 'latin1'); // devminor
  prefix.copy(block, 345);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  block.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 'latin1');
  return block;
}

/** Splits a long path into ustar (prefix, name) at a '/', or returns undefined when it cannot. */
function ustarSplit(path: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  for (let slash = path.lastIndexOf(0x2f); slash > 0; slash = path.lastIndexOf(0x2f, slash - 1)) {
    const prefix = path.subarray(0, slash);
    const name = path.subarray(slash + 1);
    if (name.length > 100 || name.length === 0) return undefined;
    if (prefix.length <= 155) return { prefix, name };
  }
  return undefined;
}

const MAX_OCTAL_SIZE = 8 ** 11 - 1; // 11 octal digits in the size field

export interface TarMemberPosition {
  headerOffset: number;
  dataOffset: number;
}

/**
 * Deterministic tar writer: ustar headers with mode 0644, uid/gid 0, mtime 0 and empty owner
 * names, so the same members in the same order always give the same bytes. A name over 100 bytes
 * goes into the ustar prefix field when it can be split at a '/', otherwise into a GNU 'L' long-name
 * entry (which GNU tar, bsdtar, Python tarfile and readTarEntries all read).
 *
 * Two modes:
 * - `new TarWriter(writable)`: streams into the Writable (waiting on backpressure); `finish()`
 *   writes the end-of-archive blocks, ends the Writable, waits for it to finish and resolves with an
 *   empty Buffer.
 * - `new TarWriter()`: collects in memory; `finish()` resolves with the whole archive.
 *
 * `add` resolves with where the member's header and data landed, the same offsets readTarEntries
 * reports. Calls must not overlap: await each `add` before the next.
 */
export class TarWriter {
  private readonly parts: Buffer[] = [];
  private written = 0;
  private finished = false;

  constructor(private readonly sink?: Writable) {}

  async add(name: string, data: Buffer): Promise<TarMemberPosition> {
    if (this.finished) throw new Error('TarWriter: add() after finish()');
    const path = Buffer.from(name, 'utf8');
    if (path.length === 0 || path.includes(0)) throw new Error(`TarWriter: invalid member name ${JSON.stringify(name)}`);
    if (data.length > MAX_OCTAL_SIZE) throw new Error(`TarWriter: member ${name} is over 8 GiB`);

    let fields: { prefix: Buffer; name: Buffer };
    if (path.length <= 100) {
      fields = { prefix: Buffer.alloc(0), name: path };
    } else {
      const split = ustarSplit(path);
      if (split) {
        fields = split;
      } else {
        const longName = Buffer.concat([path, Buffer.from([0])]);
        await this.emit(encodeHeader(Buffer.from('././@LongLink'), Buffer.alloc(0), longName.length, 'L'));
        await this.emit(longName);
        await this.emit(Buffer.alloc(padding(longName.length)));
        fields = { prefix: Buffer.alloc(0), name: path.subarray(0, 100) };
      }
    }
    const headerOffset = this.written;
    await this.emit(encodeHeader(fields.name, fields.prefix, data.length, '0'));
    const dataOffset = this.written;
    await this.emit(data);
    await this.emit(Buffer.alloc(padding(data.length)));
    return { headerOffset, dataOffset };
  }

  /** Writes the two zero blocks that end the archive; see the class comment for what it resolves with. */
  async finish(): Promise<Buffer> {
    if (this.finished) throw new Error('TarWriter: finish() called twice');
    await this.emit(Buffer.alloc(2 * BLOCK));
    this.finished = true;
    const sink = this.sink;
    if (!sink) return Buffer.concat(this.parts);
    await new Promise<void>((resolve, reject) => {
      sink.once('error', reject);
      sink.end(() => {
        sink.off('error', reject);
        resolve();
      });
    });
    return Buffer.alloc(0);
  }

  private async emit(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.written += chunk.length;
    const sink = this.sink;
    if (!sink) {
      this.parts.push(chunk);
      return;
    }
    if (!sink.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => {
          sink.off('drain', onDrain);
          reject(err);
        };
        const onDrain = () => {
          sink.off('error', onError);
          resolve();
        };
        sink.once('drain', onDrain);
        sink.once('error', onError);
      });
    }
  }
}
