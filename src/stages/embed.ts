// Embed: one unit per catalog part. Every image gets a vector from each image encoder and its
// caption one from the caption encoder, in catalog row order (row i of every .npy is catalog row
// i). An image that fails to decode gets zero vectors, mask 0 and a ledger entry, so rows stay
// aligned. Reading and decoding (in decode threads) run ahead of inference through bounded queues
// of ready chunks, one per image encoder; each encoder runs on its own thread at its own
// batch_size, the caption encoder from the start, so reading, decoding and the three encoders'
// sessions work at once and the slowest sets the pace. Memory is bounded by the queues and the
// batches, not the part; the batches are the same rows whatever the pace, so the vectors are too. Bytes that cannot be read as the catalog recorded them (the tar
// gone, cut or replaced on shared storage, an S3 short body, an outage) are the environment's
// fault, not the image's: the unit fails and a rerun reads them again once storage is whole.
// Vectors are kept as float32 while the part is embedded and written as `embed.dtype` says.
import { modelIdentity } from '../core/file-digest.ts';
import { encodeNpy } from '../artifacts/npy.ts';
import { readParquet } from '../artifacts/parquet.ts';
import { catalogSchema, type CatalogRow } from '../artifacts/tables.ts';
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import { readImageBatch } from '../corpus/image-bytes.ts';
import { BatchQueue } from '../encoders/batch-queue.ts';
import { decodeThreads, slotsInPool } from '../encoders/decode-pool.ts';
import type { EncoderThread } from '../encoders/encoder-thread.ts';
import { preprocessRgb } from '../encoders/image-preprocess.ts';
import type { ImageSlot, TensorResult, TensorType } from '../encoders/image-tensor.ts';
import type { ImageEncoderSpec, TextEncoderSpec } from '../encoders/resolve.ts';
import { UnitLedger } from '../ledger/ledger.ts';
import { toHalfArray } from '../util/float16.ts';
import { withOwnError } from '../util/sharp-message.ts';
import { PartStage } from './part-stage.ts';
import type { DoneMarker, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

/** Rows read and handed to the decode threads: their bytes, and their decoding under way. */
interface ReadChunk {
  start: number;
  batch: CatalogRow[];
  bytes: Array<Buffer | Error>;
  decoded: Promise<Array<TensorResult | { error: string }>>;
}

/** Rows read and decoded together: per row, its tensor slot for each image encoder, or undefined if it failed. */
interface ReadyChunk {
  start: number;
  pixels: Array<ImageSlot[] | undefined>;
}

/** Grows a [rows, dim] matrix as batches arrive; dim is learned from the first batch. */
class VectorTable {
  data?: Float32Array;
  dim = 0;
  constructor(readonly rows: number) {}
  put(start: number, batch: { data: Float32Array; dim: number }, where: string): void {
    if (!this.data) {
      this.dim = batch.dim;
      this.data = new Float32Array(this.rows * batch.dim);
    } else if (batch.dim !== this.dim) throw new Error(`${where}: vector size changed from ${this.dim} to ${batch.dim}`);
    this.data.set(batch.data, start * this.dim);
  }
  /** Zeroes rows that failed, so they cannot match anything. */
  clear(row: number): void {
    this.data?.fill(0, row * this.dim, (row + 1) * this.dim);
  }
}

export class EmbedStage extends PartStage {
  readonly name = 'embed';
  readonly after = ['catalog'];
  readonly folder = 'embeddings';
  readonly needs = 'gpu';
  /** Each part is keyed by its catalog part: a grown corpus embeds only its new parts. */
  readonly keyedByPart = true;

  /**
   * Each encoder's settings (batch sizes too: another batch size gives vectors that differ in the
   * last bits), with its model and tokenizer by content digest. `embed.dtype` only when it is not
   * the default, so float32 runs keep the keys they had before the setting existed.
   */
  async decidedBy(ctx: StageContext): Promise<Record<string, unknown>> {
    const { dtype } = ctx.config.embed;
    const out: Record<string, unknown> = dtype === 'float32' ? {} : { 'embed.dtype': dtype };
    for (const name of ENCODER_NAMES) {
      const e = ctx.config.encoders[name];
      const settings = e as typeof e & { tokenizer?: string };
      const ids: Record<string, unknown> = { model: await modelIdentity(settings.model, `encoders.${name}.model`) };
      if (settings.tokenizer !== undefined) ids.tokenizer = await modelIdentity(settings.tokenizer, `encoders.${name}.tokenizer`);
      out[`encoders.${name}`] = { ...settings, ...ids };
    }
    return out;
  }

  doneMarkers(ctx: StageContext, n: number): DoneMarker[] {
    return [{ storage: 'work', key: ctx.layout.embeddingMask(n) }];
  }

  async run(ctx: StageContext, n: number): Promise<UnitResult> {
    const ledger = new UnitLedger(this.name, this.unitId(n));
    const rows = await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(n), catalogSchema);
    const { images, caption } = await shared(ctx).encoders();
    const tables = new Map<EncoderName, VectorTable>([...images, caption].map((e) => [e.spec.name, new VectorTable(rows.length)]));
    const mask = new Uint8Array(rows.length).fill(1);
    const { decode_threads, prefetch_batches } = ctx.config.encoders;
    const { settings } = caption;
    const threads = decodeThreads(decode_threads, settings.spinWait && settings.executionProviders[0] === 'cpu' ? settings : undefined);
    const chunkSize = Math.max(...images.map((e) => e.spec.batchSize));
    // One queue of ready chunks per image encoder: the producer puts each chunk in every queue and
    // waits for room in all of them, so it runs at most prefetch_batches chunks ahead of the
    // slowest encoder while the others take theirs as they come.
    const queues = images.map(() => new BatchQueue<ReadyChunk>(prefetch_batches));
    let failure: Error | undefined;
    /** The unit's first failure stops every part of it: the producer and each encoder's loop. */
    const fail = (err: Error) => {
      failure ??= err;
      for (const q of queues) q.fail(failure);
    };

    const specs = images.map((e) => e.spec);
    // Each image's slot of every encoder's input tensor is made in the decode threads (image-tensor.ts).
    const tensors = images.map((e) => e.inputType as TensorType);
    /** Reads a chunk and hands its images to the decode threads; resolves once they are read, not decoded. */
    const startChunk = async (start: number): Promise<ReadChunk> => {
      const batch = rows.slice(start, start + chunkSize);
      const bytes = await readImageBatch(ctx.input, batch); // one ranged read per run of consecutive members
      const unread = bytes.findIndex((b) => b instanceof Error);
      if (unread >= 0) {
        const r = batch[unread];
        throw new Error(`${ctx.input.uri(r.tar)}: image ${r.key} (${r.length} bytes at ${r.offset}, as catalogued) cannot be read`, { cause: bytes[unread] });
      }
      // A copy per image: a view into a larger read buffer would send the whole buffer to a thread.
      const decoded = Promise.all(
        bytes.map((b) =>
          b instanceof Error
            ? { error: b.message }
            : slotsInPool({ bytes: new Uint8Array(b), specs, tensors, maxPixels: ctx.config.input.max_pixels }, threads),
        ),
      );
      return { start, batch, bytes, decoded };
    };
    const produce = async () => {
      // One chunk ahead: the next chunk is read and queued on the decode threads before this one's
      // last images finish, so the threads never wait for a read or for a chunk's slowest image.
      let next: Promise<ReadChunk> | undefined = startChunk(0);
      while (next) {
        const { start, batch, bytes, decoded }: ReadChunk = await next;
        next = start + chunkSize < rows.length ? startChunk(start + chunkSize) : undefined;
        next?.catch(() => {}); // its failure is thrown when it is awaited, in order
        const done = await decoded;
        for (const [i, r] of batch.entries()) {
          const d = done[i];
          if (!('error' in d)) continue;
          mask[start + i] = 0;
          // libvips keeps one error buffer per process, so a decode that failed beside others may
          // carry their message or none: decode it again alone for its own words.
          const own = await withOwnError(() => preprocessRgb(new Uint8Array(bytes[i] as Buffer), specs[0], ctx.config.input.max_pixels)).then(
            () => d.error,
            (err: Error) => err.message,
          );
          ledger.add(r.key, `${ctx.input.uri(r.tar)}:${r.image.replace(/^.*\//, '')}@${r.offset}`, 'undecodable_image', own);
        }
        const chunk = { start, pixels: done.map((d) => ('slots' in d ? d.slots : undefined)) };
        await Promise.all(queues.map((q) => q.put(chunk)));
      }
      for (const q of queues) q.close();
    };

    /** An image encoder collects ready rows until it has a batch of its own batch_size, as they come, on its own thread. */
    const embedImages = async (e: EncoderThread<ImageEncoderSpec>, k: number) => {
      const table = tables.get(e.spec.name)!;
      const where = `encoders.${e.spec.name} (${e.spec.model})`;
      let start = 0;
      let pending: Array<ImageSlot | undefined> = [];
      const flush = async (count: number) => {
        const batch = pending.slice(0, count);
        pending = pending.slice(count);
        table.put(start, await e.encodeImages(batch), where);
        start += count;
      };
      for await (const chunk of queues[k]) {
        pending.push(...chunk.pixels.map((px) => px?.[k]));
        while (pending.length >= e.spec.batchSize) await flush(e.spec.batchSize);
      }
      if (pending.length) await flush(pending.length);
    };
    /** The captions need no image: their encoder runs from the start, beside the image encoders. */
    const embedCaptions = async (text: EncoderThread<TextEncoderSpec>) => {
      for (let start = 0; start < rows.length && !failure; start += text.spec.batchSize) {
        const texts = rows.slice(start, start + text.spec.batchSize).map((r) => r.caption);
        tables.get('caption')!.put(start, await text.encodeTexts(texts), `encoders.caption (${text.spec.model})`);
      }
    };
    const parts = [produce(), ...images.map((e, k) => embedImages(e, k)), embedCaptions(caption)].map((p) => p.catch(fail));
    await Promise.all(parts); // every part has stopped before the unit fails: none writes after it
    if (failure) throw failure;

    mask.forEach((ok, row) => {
      if (!ok) for (const t of tables.values()) t.clear(row);
    });
    const half = ctx.config.embed.dtype === 'float16';
    for (const [name, t] of tables) {
      const data = t.data ?? new Float32Array(0);
      await ctx.work.write(ctx.layout.embeddingPart(name, n), encodeNpy(half ? toHalfArray(data) : data, [rows.length, t.dim]));
    }
    await ledger.save(ctx);
    await ctx.work.write(ctx.layout.embeddingMask(n), encodeNpy(mask, [rows.length]));
    const ok = mask.reduce((a, b) => a + b, 0);
    return { items: ok, failed: rows.length - ok };
  }
}
