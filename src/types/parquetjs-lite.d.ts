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
    encoding?: 'PLAIN' | 'RLE' | 'PLAIN_DICTIONARY' | (string & {});
    compression?: ParquetCompression | (string & {});
    /** bits for RLE, bytes for FIXED_LEN_BYTE_ARRAY */
    typeLength?: number;
    /** false: write no min/max statistics for this column */
    statistics?: boolean;
    /** a nested group */
    fields?: ParquetSchemaDefinition;
  }

  export type ParquetSchemaDefinition = Record<string, ParquetFieldDefinition>;

  export class ParquetSchema {
    constructor(schema: ParquetSchemaDefinition);
    readonly schema: ParquetSchemaDefinition;
  }

  export interface ParquetWriterOptions {
    rowGroupSize?: number;
    pageSize?: number;
    /** default true; false writes DataPage V1, which every reader understands */
    useDataPageV2?: boolean;
    pageIndex?: boolean;
    /** passed on to fs.createWriteStream by openFile */
    flags?: string;
    mode?: number;
  }

  export type ParquetRow = Record<string, unknown>;

  export class ParquetWriter {
    static openFile(schema: ParquetSchema, path: string, opts?: ParquetWriterOptions): Promise<ParquetWriter>;
    static openStream(schema: ParquetSchema, outputStream: Writable, opts?: ParquetWriterOptions): Promise<ParquetWriter>;
    appendRow(row: ParquetRow): Promise<void>;
    /** Writes the footer and ends the output stream. */
    close(): Promise<void>;
    setRowGroupSize(rows: number): void;
    setMetadata(key: string, value: string): void;
  }

  export class ParquetCursor {
    /** The next row, or null after the last. */
    next(): Promise<ParquetRow | null>;
    rewind(): void;
  }

  export class ParquetReader {
    static openFile(path: string, options?: Record<string, unknown>): Promise<ParquetReader>;
    static openBuffer(buffer: Buffer, options?: Record<string, unknown>): Promise<ParquetReader>;
    /** columns: names (or paths) to read; none or [] reads all */
    getCursor(columns?: Array<string | string[]>): ParquetCursor;
    /** Row count from the footer; parquetjs-lite may hand back a number or an Int64-like object. */
    getRowCount(): number | { valueOf(): number; toNumber?(): number };
    getMetadata(): Record<string, string>;
    close(): Promise<void>;
  }
}
