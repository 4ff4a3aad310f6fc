// Embed: one unit per catalog part. Every image gets a vector from each image encoder and its
// caption one from the caption encoder, in catalog row order (row i of every .npy is catalog row
// i). An image that fails to decode gets zero vectors, mask 0 and a ledger entry, so rows stay
// aligned. Bytes that cannot be read as the catalog recorded them (the tar gone, cut or replaced
// on shared storage, an S3 short body, an outage) are the environment's fault, not the image's:
// the unit fails and a rerun reads them again once storage is whole. Work goes batch by batch:
// memory is bounded by the batch, not the part.
import { modelIdentity } from '../provenance/file-digest.ts';
import { encodeNpy } from '../artifacts/npy.ts';
import { readParquet } from '../artifacts/parquet.ts';
import type { EncoderName } from '../config/schema.ts';
import { readImageBatch } from '../corpus/image-bytes.ts';
import { decodeKey, decodeRgb, writeChw } from '../encoders/image-preprocess.ts';
import { encodeImages, encodeTexts } from '../encoders/onnx-encoder.ts';
import { resolveEncoders } from '../encoders/resolve.ts';
import { UnitLedger } from '../ledger/ledger.ts';
import { catalogSchema, type CatalogRow } from './catalog.ts';
import { PartStage } from './part-stage.ts';
import { memoize, type StageContext, type UnitResult } from './stage.ts';
import { allWithOwnErrors } from '../util/sharp-message.ts';

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

  /** Each encoder's settings, with its model and tokenizer by content digest; batch sizes only pace the work. */
  async decidedBy(ctx: StageContext): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [name, e] of Object.entries(ctx.config.encoders)) {
      const { batch_size: _pace, ...settings } = e as typeof e & { tokenizer?: string };
      const ids: Record<string, unknown> = { model: await modelIdentity(settings.model, `encoders.${name}.model`) };
      if (settings.tokenizer !== undefined) ids.tokenizer = await modelIdentity(settings.tokenizer, `encoders.${name}.tokenizer`);
      out[`encoders.${name}`] = { ...settings, ...ids };
    }
    return out;
  }

  isDone(ctx: StageContext, n: number): Promise<boolean> {
    return ctx.work.exists(ctx.layout.embeddingMask(n));
  }

  async run(ctx: StageContext, n: number): Promise<UnitResult> {
    const ledger = new UnitLedger(this.name, this.unitId(n));
    const rows = await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(n), catalogSchema);
    const { images, caption } = await memoize(ctx, 'encoders', () => resolveEncoders(ctx.config, ctx.cacheDir));
    const tables = new Map<EncoderName, VectorTable>([...images, caption].map((e) => [e.name, new VectorTable(rows.length)]));
    const mask = new Uint8Array(rows.length).fill(1);
    const batchSize = Math.min(...images.map((e) => e.batchSize), caption.batchSize);

    for (let start = 0; start < rows.length; start += batchSize) {
      const batch = rows.slice(start, start + batchSize);
      const bytes = await readImageBatch(ctx.input, batch); // one ranged read per run of consecutive members
      const unread = bytes.findIndex((b) => b instanceof Error);
      if (unread >= 0) {
        const r = batch[unread];
        throw new Error(`${ctx.input.uri(r.tar)}: image ${r.key} (${r.length} bytes at ${r.offset}, as catalogued) cannot be read`, { cause: bytes[unread] });
      }
      // Decode once per distinct preprocessing; encoders that share size and crop share pixels.
      const decoded = new Map<string, Array<Buffer | Error>>();
      for (const spec of images) {
        const key = decodeKey(spec);
        if (decoded.has(key)) continue;
        decoded.set(key, await allWithOwnErrors((bytes as Buffer[]).map((b) => () => decodeRgb(b, spec, ctx.config.input.max_pixels))));
      }
      batch.forEach((r, i) => {
        const err = [...decoded.values()].map((d) => d[i]).find((d): d is Error => d instanceof Error);
        if (!err) return;
        mask[start + i] = 0;
        ledger.add(r.key, `${ctx.input.uri(r.tar)}:${r.image.replace(/^.*\//, '')}@${r.offset}`, 'undecodable_image', err);
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
      await ctx.work.write(ctx.layout.embeddingPart(name, n), encodeNpy(t.data ?? new Float32Array(0), [rows.length, t.dim]));
    }
    await ledger.save(ctx);
    await ctx.work.write(ctx.layout.embeddingMask(n), encodeNpy(mask, [rows.length]));
    const ok = mask.reduce((a, b) => a + b, 0);
    return { items: ok, failed: rows.length - ok };
  }
}
