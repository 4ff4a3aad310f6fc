// Writes a synthetic corpus in img2dataset's webdataset layout (NNNNN.tar with {key}.jpg/.txt/.json,
// NNNNN.parquet metadata, NNNNN_stats.json) for the GPU throughput check, using the project's own
// production dependencies (sharp, parquetjs-lite) so it runs wherever the project's bundle runs.
// Images: 512x384 JPEG q90, smooth random blobs plus mild noise (~40-60 KB, decode cost near a photo's).
// Usage: node gen-corpus.mjs <app dir with node_modules> <out dir> <images> [per shard]
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const [appDir, outDir, nArg, perArg] = process.argv.slice(2);
const require = createRequire(path.resolve(appDir) + '/');
const sharp = require('sharp');
const parquet = require('parquetjs-lite');
const N = Number(nArg ?? 2000),
  per = Number(perArg ?? 500);
fs.mkdirSync(outDir, { recursive: true });

let seed = 12345;
const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const words = 'red blue green cat dog tree house car river mountain city street flower bird boat sky beach chair table lamp'.split(' ');

async function image() {
  const s = 24,
    blob = Buffer.alloc(s * s * 3);
  for (let i = 0; i < blob.length; i++) blob[i] = Math.floor(rand() * 256);
  const w = 512,
    h = 384,
    noise = Buffer.alloc(w * h * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = 128 + Math.floor((rand() - 0.5) * 24);
  const base = await sharp(blob, { raw: { width: s, height: s, channels: 3 } })
    .resize(w, h, { kernel: 'cubic' })
    .raw()
    .toBuffer();
  for (let i = 0; i < base.length; i++) base[i] = Math.max(0, Math.min(255, base[i] + noise[i] - 128));
  return sharp(base, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

function tarHeader(name, size) {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write(
    Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0') + '\0',
    136,
  );
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}
const pad = (n) => Buffer.alloc((512 - (n % 512)) % 512);

const schema = new parquet.ParquetSchema({
  key: { type: 'UTF8' },
  caption: { type: 'UTF8' },
  status: { type: 'UTF8' },
  error_message: { type: 'UTF8', optional: true },
  width: { type: 'INT64' },
  height: { type: 'INT64' },
});
let bytes = 0;
for (let shard = 0, start = 0; start < N; shard++, start += per) {
  const name = String(shard).padStart(5, '0');
  const count = Math.min(per, N - start);
  const jpgs = [];
  for (let i = 0; i < count; i += os.availableParallelism()) {
    const batch = Array.from({ length: Math.min(os.availableParallelism(), count - i) }, () => image());
    jpgs.push(...(await Promise.all(batch)));
  }
  const parts = [],
    rows = [];
  for (let i = 0; i < count; i++) {
    const key = name + String(i).padStart(4, '0');
    const caption = `a ${words[Math.floor(rand() * words.length)]} ${words[Math.floor(rand() * words.length)]} near a ${words[Math.floor(rand() * words.length)]}`;
    const meta = Buffer.from(JSON.stringify({ key, caption, status: 'success', width: 512, height: 384 }));
    for (const [member, body] of [
      [`${key}.jpg`, jpgs[i]],
      [`${key}.txt`, Buffer.from(caption)],
      [`${key}.json`, meta],
    ]) {
      parts.push(tarHeader(member, body.length), body, pad(body.length));
    }
    bytes += jpgs[i].length;
    rows.push({ key, caption, status: 'success', error_message: null, width: 512, height: 384 });
  }
  parts.push(Buffer.alloc(1024));
  fs.writeFileSync(path.join(outDir, `${name}.tar`), Buffer.concat(parts));
  const w = await parquet.ParquetWriter.openFile(schema, path.join(outDir, `${name}.parquet`));
  for (const r of rows) await w.appendRow(r);
  await w.close();
  fs.writeFileSync(path.join(outDir, `${name}_stats.json`), JSON.stringify({ count, successes: count, failed_to_download: 0, failed_to_resize: 0 }));
}
console.log(JSON.stringify({ images: N, shards: Math.ceil(N / per), mean_jpeg_kb: +(bytes / N / 1024).toFixed(1) }));
