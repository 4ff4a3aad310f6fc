// Catalog: one unit per input shard. Reads the shard's samples, checks each (an image that sharp
// can read, under the pixel limit, with a text caption) and records where its bytes are (tar,
// byte offset, length), so later stages fetch one image with one ranged read. Whatever fails goes
// to the ledger with the shard and member, when it is the item's own fault (a corrupt image, an
// empty caption, a tar that ends mid-member). A fault of the environment (a store unreachable past
// its retries, an I/O error, a shard listed a moment ago and gone now) fails the unit instead, so a
// rerun tries the shard again rather than recording its images as lost.
import sharp from 'sharp';
import { partName } from '../core/layout.ts';
import { writeParquet } from '../artifacts/parquet.ts';
import { catalogSchema, type CatalogRow } from '../artifacts/tables.ts';
import { MetadataError, readShardMetadata, type ShardMetadata } from '../corpus/shard-metadata.ts';
import { TarError } from '../corpus/tar.ts';
import { listShards, memberByteCaps, readSamples, type ShardRef, type WebdatasetSample } from '../corpus/webdataset.ts';
import { configSchema } from '../config/schema.ts';
import { canonicalJson } from '../core/digest.ts';
import { printableKey, unsafeKeyProblem } from '../storage/safe-key.ts';
import { UnitLedger } from '../ledger/ledger.ts';
import { NotFoundError, ObjectChangedError } from '../storage/storage.ts';
import type { DoneMarker, Stage, StageContext, UnitResult } from '../core/stage.ts';
import { describeError } from '../util/error-chain.ts';
import { withOwnError } from '../util/sharp-message.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The caption as clean text, or the reason it is not one. */
export function checkCaption(raw: Buffer | string | undefined | null): { caption: string } | { reason: string; message: string } {
  if (raw === undefined || raw === null) return { reason: 'missing_caption', message: 'no caption' };
  let text: string;
  try {
    text = typeof raw === 'string' ? raw : utf8.decode(raw);
  } catch {
    return { reason: 'non_text_caption', message: 'caption is not valid UTF-8 text' };
  }
  if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) return { reason: 'non_text_caption', message: 'caption holds control characters' };
  const caption = text.replace(/\s+/g, ' ').trim();
  // A stray U+FFFD is mojibake in otherwise good text (openmoji has "le\ufffdn"); many are binary.
  const replaced = caption.match(/\ufffd/g)?.length ?? 0;
  if (replaced > caption.length / 10) return { reason: 'non_text_caption', message: `caption is ${replaced} replacement characters in ${caption.length}` };
  if (!caption) return { reason: 'empty_caption', message: 'caption is empty' };
  return { caption };
}

/**
 * The shard's img2dataset metadata. Failed downloads go to the ledger one by one
 * (img2dataset_<status>), so the summary counts them. A shard without metadata is fine when
 * captions come from the tar; unreadable metadata, or none when captions come from it, is a
 * ledger entry, and the samples then fail one by one for want of a caption.
 */
async function shardMetadata(ctx: StageContext, shard: ShardRef, ledger: UnitLedger): Promise<ShardMetadata | undefined> {
  const { source, column } = ctx.config.input.caption;
  const where = ctx.input.uri(shard.parquet);
  try {
    const meta = await readShardMetadata(ctx.input, shard.parquet, source === 'parquet' ? column : undefined);
    for (const f of meta.failed) ledger.add(f.key, where, `img2dataset_${f.status}`, f.error ?? `img2dataset status ${f.status}`);
    return meta;
  } catch (err) {
    if (err instanceof NotFoundError) {
      if (source === 'parquet') ledger.add(shard.parquet, where, 'missing_metadata', `no shard metadata to take captions from: ${err.message}`);
      return undefined;
    }
    if (err instanceof MetadataError) {
      ledger.add(shard.parquet, where, err.reason, err);
      return undefined;
    }
    throw err; // the store, not the data (an outage past its retries, an I/O error): fail the unit, a rerun retries
  }
}

const DEFAULT_MEMBER_CAPS = configSchema.shape.input.shape.max_member_bytes.parse(undefined);

const captionBytes = (v: unknown): Buffer | string | undefined | null =>
  v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : (v as string | undefined | null);

export class CatalogStage implements Stage<ShardRef> {
  readonly name = 'catalog';
  readonly after = [];
  readonly folder = 'catalog';
  readonly keyedByPart = true;

  /**
   * The caption settings and the pixel limit (each part is decided by its shard as well:
   * partsDecidedBy). The member caps only when not the defaults, so runs from before they existed
   * keep their keys.
   */
  decidedBy(ctx: StageContext): Record<string, unknown> {
    const { caption, max_pixels, max_member_bytes } = ctx.config.input;
    const defaultCaps = canonicalJson(max_member_bytes) === canonicalJson(DEFAULT_MEMBER_CAPS);
    return { 'input.caption': caption, 'input.max_pixels': max_pixels, ...(defaultCaps ? {} : { 'input.max_member_bytes': max_member_bytes }) };
  }

  /**
   * Each part by its shard's identity on storage as listed: its name, size and version (ETag on
   * S3, size and mtime on a disk), and its metadata parquet's. A shard added to the corpus adds a
   * part and a replaced one changes only its own; a worker whose `input.path` holds other tars
   * under the same names is refused at start naming both identities (run-identity.ts).
   */
  async partsDecidedBy(ctx: StageContext): Promise<Record<string, Record<string, unknown>>> {
    const shards = await this.plan(ctx);
    return Object.fromEntries(
      shards.map((s) => [partName(s.number), { tar: { name: s.tar, size: s.size, version: s.version }, metadata: s.metadata ?? 'none' }]),
    );
  }

  async plan(ctx: StageContext): Promise<ShardRef[]> {
    const shards = await listShards(ctx.input);
    if (!shards.length) throw new Error(`${ctx.input.root}: no NNNNN.tar shards found`);
    const max = ctx.config.input.max_shards;
    return max > 0 ? shards.slice(0, max) : shards;
  }

  unitId(shard: ShardRef): string {
    return partName(shard.number);
  }

  doneMarkers(ctx: StageContext, shard: ShardRef): DoneMarker[] {
    return [{ storage: 'work', key: ctx.layout.catalogPart(shard.number) }];
  }

  async run(ctx: StageContext, shard: ShardRef): Promise<UnitResult> {
    const ledger = new UnitLedger(this.name, this.unitId(shard));
    // A shard's name comes from a listing of storage others write to: one that could leave the
    // input's folder is never read, and its part is empty.
    const unsafe = unsafeKeyProblem(shard.tar);
    if (unsafe) {
      ledger.add(printableKey(shard.tar), `${ctx.input.root}:${printableKey(shard.tar)}`, 'unsafe_member_name', `shard name ${unsafe}`);
      await ledger.save(ctx);
      await writeParquet(ctx.work, ctx.layout.catalogPart(shard.number), catalogSchema, []);
      return { items: 0, failed: ledger.failures.length };
    }
    // The tar must be the one the run listed (its key holds its identity): one changed since is a
    // fault of the environment (a copy under way, a replaced corpus), so the unit fails and is retried.
    const now = await ctx.input.stat(shard.tar);
    if (now.version !== shard.version) {
      throw new ObjectChangedError(
        `${ctx.input.uri(shard.tar)} (${now.size} bytes)`,
        `${shard.version} (${shard.size} bytes, as the run listed it)`,
        now.version,
      );
    }
    const shardMeta = await shardMetadata(ctx, shard, ledger);
    // img2dataset writes no tar members for failed downloads; should one appear, it is in the ledger already.
    const failedKeys = new Set(shardMeta?.failed.map((f) => f.key));
    const fromParquet = ctx.config.input.caption.source === 'parquet';
    const stem = shard.tar.replace(/^.*\//, '').replace(/\.tar$/, '');
    const rows: CatalogRow[] = [];
    const seen = new Set<string>();

    const check = async (s: WebdatasetSample): Promise<void> => {
      seen.add(s.key);
      if (s.refused)
        return ledger.add(printableKey(s.key), `${ctx.input.uri(shard.tar)}:${printableKey(s.refused.member)}`, s.refused.reason, s.refused.message);
      const where = `${ctx.input.uri(shard.tar)}:${s.image?.member ?? s.members[0]}`;
      if (!s.image) return ledger.add(s.key, where, 'missing_image', `no image member among ${s.members.join(', ')}`);
      if (failedKeys.has(s.key)) return;
      const cap = checkCaption(fromParquet ? captionBytes(shardMeta?.captions?.get(s.key)) : s.txt);
      if ('reason' in cap) return ledger.add(s.key, where, cap.reason, cap.message);
      let meta: sharp.Metadata;
      try {
        const data = s.image.data;
        meta = await withOwnError(() => sharp(data, { limitInputPixels: false }).metadata());
      } catch (err) {
        return ledger.add(s.key, where, 'corrupt_image', `unreadable image: ${describeError(err)}`);
      }
      const { width = 0, height = 0 } = meta;
      if (!width || !height) return ledger.add(s.key, where, 'corrupt_image', 'image has no size');
      if (width * height > ctx.config.input.max_pixels) {
        return ledger.add(s.key, where, 'too_many_pixels', `${width}x${height} is over input.max_pixels (${ctx.config.input.max_pixels})`);
      }
      rows.push({
        row: rows.length,
        key: s.key,
        image: `${stem}/${s.image.member}`,
        tar: shard.tar,
        version: shard.version,
        offset: s.image.offset,
        length: s.image.length,
        format: meta.format ?? s.image.ext,
        caption: cap.caption,
        width,
        height,
      });
    };

    let truncated = false;
    try {
      for await (const sample of readSamples(ctx.input, shard.tar, memberByteCaps(ctx.config.input))) await check(sample);
    } catch (err) {
      // Only a tar that is itself malformed is the data's fault; the samples before the fault are kept.
      // Anything else (the shard gone since it was listed, an I/O error, an outage) fails the unit.
      // A tar that ends early may be a copy still under way: retryable, so retry-failed reads it again.
      if (!(err instanceof TarError)) throw err;
      truncated = err.truncated;
      ledger.add(shard.tar, `${ctx.input.uri(shard.tar)}@${err.offset}`, 'corrupt_tar', err, { retryable: err.truncated });
    }
    // Samples the metadata lists as downloaded but the tar lacks (a truncated shard): name each.
    if (shardMeta) {
      for (const key of shardMeta.downloaded) {
        if (!seen.has(key))
          ledger.add(key, ctx.input.uri(shard.tar), 'missing_from_tar', 'listed in the shard metadata but not in the tar', { retryable: truncated });
      }
    }
    await ledger.save(ctx);
    await writeParquet(ctx.work, ctx.layout.catalogPart(shard.number), catalogSchema, rows);
    return { items: rows.length, failed: ledger.failures.length };
  }
}
