// Parquet in and out through parquetjs-lite. Files are built in a local temp folder and handed to
// storage whole. List columns are written as repeated fields, which DuckDB, pyarrow and datasets
// read as lists; an empty list reads back from parquetjs-lite as a missing property, so readers
// here restore it.
import parquet from 'parquetjs-lite';
import { storeViaLocalFile } from '../storage/staged-file.ts';
import type { Storage } from '../storage/storage.ts';

type FieldType = 'UTF8' | 'INT64' | 'INT32' | 'DOUBLE' | 'FLOAT' | 'BOOLEAN' | 'JSON';
export interface FieldSpec {
  type: FieldType;
  optional?: boolean;
  repeated?: boolean;
}
export type TableSchema = Record<string, FieldSpec>;

function toParquetSchema(schema: TableSchema) {
  const fields: Record<string, { type: string; optional?: boolean; repeated?: boolean; compression: string }> = {};
  for (const [name, spec] of Object.entries(schema)) fields[name] = { ...spec, compression: 'GZIP' };
  return new parquet.ParquetSchema(fields);
}

export async function writeParquet(storage: Storage, key: string, schema: TableSchema, rows: Iterable<object>): Promise<void> {
  await storeViaLocalFile(storage, key, async (file) => {
    const writer = await parquet.ParquetWriter.openFile(toParquetSchema(schema), file);
    writer.setRowGroupSize(8192);
    for (const row of rows) await writer.appendRow(row as Record<string, unknown>);
    await writer.close();
  });
}

/**
 * Reads a whole part (parts are bounded by the chunk size). With a schema, INT64 columns come back
 * as numbers and missing lists as []; without one, rows come back as the file has them.
 */
export async function readParquet<T = Record<string, unknown>>(storage: Storage, key: string, schema: TableSchema = {}): Promise<T[]> {
  const reader = await parquet.ParquetReader.openFile(await storage.localPath(key));
  try {
    const cursor = reader.getCursor();
    const rows: T[] = [];
    for (let row = await cursor.next(); row; row = await cursor.next()) {
      for (const [name, spec] of Object.entries(schema)) {
        let v = row[name];
        if (spec.repeated && v === undefined) v = [];
        if (spec.optional && v === undefined) v = null;
        if (spec.type === 'INT64') v = Array.isArray(v) ? v.map(Number) : v == null ? v : Number(v);
        row[name] = v;
      }
      rows.push(row as T);
    }
    return rows;
  } finally {
    await reader.close();
  }
}

export async function parquetRowCount(storage: Storage, key: string): Promise<number> {
  const reader = await parquet.ParquetReader.openFile(await storage.localPath(key));
  try {
    return Number(reader.getRowCount());
  } finally {
    await reader.close();
  }
}
