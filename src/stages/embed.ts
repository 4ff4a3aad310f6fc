// Embed: one unit per catalog part. Every image gets a vector from each image encoder and its
// caption one from the caption encoder, in catalog row order (row i of every .npy is catalog row
// i). An image that fails to decode gets zero vectors, mask 0 and a ledger entry, so rows stay
// aligned. Work goes batch by batch: memory is bounded by the batch, not the part.
import { layout } from '../artifacts/layout.ts';
import { encodeNpy } from '../artifacts/npy.ts';
import { readParquet } from '../artifacts/parquet.ts';
import { catalogSchema, type CatalogRow } from '../artifacts/tables.ts';
import type { EncoderName } from '../config/schema.ts';
import { readImageBatch } from '../corpus/image-bytes.ts';
import { decodeKey, decodeRgb, writeChw } from '../encoders/image-preprocess.ts';
import { encodeImages, encodeTexts } from '../encoders/onnx-encoder.ts';
import { resolveEncoders } from '../encoders/resolve.ts';
import { UnitLedger } from '../ledger/ledger.ts';
import { NotFoundError, ShortReadError } from '../storage/storage.ts';
import { PartStage } from './part-stage.ts';
import { memoize, type StageContext, type UnitResult } from './stage.ts';

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

  isDone(ctx: StageContext, n: number): Promise<boolean> {
    return ctx.work.exists(layout.embeddingMask(n));
  }

  async run(ctx: StageContext, n: number): Promise<UnitResult> {
    const ledger = new UnitLedger(this.name, this.unitId(n));
    const rows = await readParquet<CatalogRow>(ctx.work, layout.catalogPart(n), catalogSchema);
    const { images, caption } = await memoize(ctx, 'encoders', () => resolveEncoders(ctx.config, ctx.cacheDir));
    const tables = new Map<EncoderName, VectorTable>([...images, caption].map((e) => [e.name, new VectorTable(rows.length)]));
    const mask = new Uint8Array(rows.length).fill(1);
    const batchSize = Math.min(...images.map((e) => e.batchSize), caption.batchSize);

    for (let start = 0; start < rows.length; start += batchSize) {
      const batch = rows.slice(start, start + batchSize);
      const bytes = await readImageBatch(ctx.input, batch); // one ranged read per run of consecutive members
      // A missing or cut tar is bad input (ledger); any other storage error (an outage past its
      // retries) fails the unit, so a rerun reads those images instead of recording them lost.
      const outage = bytes.find((b) => b instanceof Error && !(b instanceof NotFoundError) && !(b instanceof ShortReadError));
      if (outage) throw outage;
      // Decode once per distinct preprocessing; encoders that share size and crop share pixels.
      const decoded = new Map<string, Array<Buffer | Error>>();
      for (const spec of images) {
        const key = decodeKey(spec);
        if (decoded.has(key)) continue;
        decoded.set(key, await Promise.all(bytes.map((b) => (b instanceof Error ? b : decodeRgb(b, spec, ctx.config.input.max_pixels).catch((err: Error) => err)))));
      }
      batch.forEach((r, i) => {
        const err = [...decoded.values()].map((d) => d[i]).find((d): d is Error => d instanceof Error);
        if (!err) return;
        mask[start + i] = 0;
        const reason = bytes[i] instanceof Error ? 'unreadable_image_bytes' : 'undecodable_image';
        ledger.add(r.key, `${ctx.input.uri(r.tar)}:${r.image.replace(/^.*\//, '')}@${r.offset}`, reason, err.message);
      });
      for (const spec of images) {
        const rgb = decoded.get(decodeKey(spec))!;
        const pixels = new Float32Array(batch.length * 3 * spec.size * spec.size);
        rgb.forEach((px, i) => px instanceof Buffer && writeChw(px, spec, pixels, i));
        tables.get(spec.name)!.put(start, await encodeImages(spec, pixels, batch.length), spec.model);
      }
      tables.get('caption')!.put(start, await encodeTexts(caption, batch.map((r) => r.caption)), caption.model);
    }

    mask.forEach((ok, row) => {
      if (!ok) for (const t of tables.values()) t.clear(row);
    });
    for (const [name, t] of tables) {
      await ctx.work.write(layout.embeddingPart(name, n), encodeNpy(t.data ?? new Float32Array(0), [rows.length, t.dim]));
    }
    await ledger.save(ctx.work);
    await ctx.work.write(layout.embeddingMask(n), encodeNpy(mask, [rows.length]));
    const ok = mask.reduce((a, b) => a + b, 0);
    return { items: ok, failed: rows.length - ok };
  }
}
