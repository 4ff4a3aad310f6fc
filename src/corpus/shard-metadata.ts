// A shard's img2dataset metadata (NNNNN.parquet): which samples downloaded, why the others did not,
// and, when captions come from the metadata, each sample's caption. These files come from pyarrow
// (dictionary pages, SNAPPY or ZSTD), so they are read with hyparquet and its decompressors, and
// only the columns needed. A shard's metadata is small (a row per sample), so it is read whole.
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { Storage } from '../storage/storage.ts';

export interface FailedDownload {
  key: string;
  /** img2dataset's status, e.g. failed_to_download, failed_to_resize. */
  status: string;
  error?: string;
}

export interface ShardMetadata {
  /** Keys of the samples img2dataset wrote to the tar (status success, or no status column). */
  downloaded: Set<string>;
  failed: FailedDownload[];
  /** Caption per downloaded key, when a caption column was asked for. */
  captions?: Map<string, unknown>;
}

/** Metadata that exists but cannot be used: `reason` is the ledger code. */
export class MetadataError extends Error {
  constructor(
    readonly reason: 'corrupt_metadata' | 'metadata_column_missing',
    message: string,
  ) {
    super(message);
    this.name = 'MetadataError';
  }
}

const text = (v: unknown): string => (typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : String(v));

/** Reads `key` from `input`; a missing object throws the storage's NotFoundError. */
export async function readShardMetadata(input: Storage, key: string, captionColumn?: string): Promise<ShardMetadata> {
  const bytes = await input.read(key);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    const metadata = parquetMetadata(file);
    const names = new Set(metadata.schema.slice(1).map((e) => e.name));
    if (!names.has('key')) throw new MetadataError('metadata_column_missing', `${input.uri(key)}: no "key" column (columns: ${[...names].join(', ')})`);
    if (captionColumn && !names.has(captionColumn)) {
      throw new MetadataError('metadata_column_missing', `${input.uri(key)}: no caption column "${captionColumn}" (columns: ${[...names].join(', ')})`);
    }
    const columns = ['key', 'status', 'error_message', captionColumn].filter((c): c is string => !!c && names.has(c));
    rows = await parquetReadObjects({ file, metadata, columns: [...new Set(columns)], compressors });
  } catch (err) {
    if (err instanceof MetadataError) throw err;
    throw new MetadataError('corrupt_metadata', `${input.uri(key)}: unreadable parquet: ${(err as Error).message}`);
  }
  const out: ShardMetadata = { downloaded: new Set(), failed: [], captions: captionColumn ? new Map() : undefined };
  for (const r of rows) {
    const k = text(r.key);
    const status = r.status == null ? 'success' : text(r.status);
    if (status !== 'success') {
      out.failed.push({ key: k, status, error: r.error_message == null ? undefined : text(r.error_message) });
      continue;
    }
    out.downloaded.add(k);
    if (captionColumn) out.captions!.set(k, r[captionColumn]);
  }
  return out;
}
