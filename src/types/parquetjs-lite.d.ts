// Minimal typings for the parts of parquetjs-lite 0.8.7 this project uses (the package ships none).
// Reading back: an OPTIONAL field written as null, and a REPEATED field written as [], come back
// as a missing property, not as null / [].
declare module 'parquetjs-lite' {
  import type { Writable } from 'node:stream';

  export type ParquetType =
    | 'BOOLEAN'
    | 'INT32'
    | 'INT64'
    | 'INT96'
    | 'FLOAT'
    | 'DOUBLE'
    | 'BYTE_ARRAY'
    | 'FIXED_LEN_BYTE_ARRAY'
    | 'UTF8'
    | 'ENUM'
    | 'JSON'
    | 'BSON'
    | 'DATE'
    | 'TIME_MILLIS'
    | 'TIME_MICROS'
    | 'TIMESTAMP_MILLIS'
    | 'TIMESTAMP_MICROS'
    | 'UINT_8'
    | 'UINT_16'
    | 'UINT_32'
    | 'UINT_64'
    | 'INT_8'
    | 'INT_16'
    | 'INT_32'
    | 'INT_64'
    | 'INTERVAL';

  export type ParquetCompression = 'UNCOMPRESSED' | 'GZIP' | 'SNAPPY' | 'LZO' | 'BROTLI' | 'LZ4';

  // `string & {}` keeps the names as suggestions while accepting a plain string (the library
  // checks the value at schema construction and throws on an unknown one).
  export interface ParquetFieldDefinition {
    type?: ParquetType | 'LIST' | 'MAP' | (string & {});
    optional?: boolean;
    repeated?: boolean;
    compression?: ParquetCompression | (string & {});
  }

  export type ParquetSchemaDefinition = Record<string, ParquetFieldDefinition>;

  export class ParquetSchema {
    constructor(schema: ParquetSchemaDefinition);
  }

  export interface ParquetWriterOptions {
    /** default true; false writes DataPage V1, which every reader understands */
    useDataPageV2?: boolean;
  }

  export type ParquetRow = Record<string, unknown>;

  export class ParquetWriter {
    static openFile(schema: ParquetSchema, path: string, opts?: ParquetWriterOptions): Promise<ParquetWriter>;
    static openStream(schema: ParquetSchema, outputStream: Writable, opts?: ParquetWriterOptions): Promise<ParquetWriter>;
    appendRow(row: ParquetRow): Promise<void>;
    /** Writes the footer and ends the output stream. */
    close(): Promise<void>;
    setRowGroupSize(rows: number): void;
  }

  export class ParquetCursor {
    /** The next row, or null after the last. */
    next(): Promise<ParquetRow | null>;
  }

  export class ParquetReader {
    static openFile(path: string): Promise<ParquetReader>;
    /** Reads every column. */
    getCursor(): ParquetCursor;
    /** Row count from the footer; parquetjs-lite may hand back a number or an Int64-like object. */
    getRowCount(): number | { valueOf(): number; toNumber?(): number };
    close(): Promise<void>;
  }
}
