// Preprocessing per core: one image at a time on one thread (sharp.concurrency(1)), the same
// 512x384 photo-like JPEGs (~58 KB, made here with sharp: gradients and noise, quality 90) through
// sharp's decode to raw RGB, sharp's own resize (cubic) + centre crop, and the project's
// preprocessing (decode, PIL-exact resize, crop, float CHW): CLIP with the native resampler and the
// JavaScript fallback, DINOv2 (resize 256, crop 224), and both encoders of one image (decoded once,
// as the embed stage does). Variants take turns in rounds; each rate is the median round. Figures:
// images/s of wall time, and images per CPU-second of the whole process (sharp's threads
// included), which a loaded machine moves less. Goal: CLIP >= 250 images/s per core, about
// sharp's own resize.
// Usage: npx tsx bench/preprocess.ts [--seconds 1] [--rounds 5]   (bench/embed.ts runs it first)
import os from 'node:os';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { decodeRgb } from '../src/encoders/decode-rgb.ts';
import { geometry, type ImagePreprocess, preprocessRgb, writeChw } from '../src/encoders/image-preprocess.ts';
import { resampler } from '../src/encoders/native-addon.ts';
import { PRESETS } from '../src/encoders/presets.ts';
import { preprocessImages } from '../src/encoders/preprocess-images.ts';
import { resizeWindowJs } from '../src/encoders/resample.ts';

const W = 512;
const H = 384;
const MAX_PIXELS = 1e8;

/** Photo-like JPEGs: colour gradients, an edge and per-pixel noise, so the coder works as on photos. */
export async function photoJpegs(count: number): Promise<Buffer[]> {
  let seed = 1;
  const noise = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 30;
  const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
  return Promise.all(
    Array.from({ length: count }, (_, k) => {
      const px = Buffer.alloc(W * H * 3);
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const i = (y * W + x) * 3;
          const edge = x > W / 3 + k * 5 && y < H / 2 ? 60 : 0;
          px[i] = clamp(127 + 100 * Math.sin(x / 40 + k) + edge + noise());
          px[i + 1] = clamp(127 + 100 * Math.cos(y / 30 + k / 3) + noise());
          px[i + 2] = clamp((255 * (x + y)) / (W + H) - edge + noise());
        }
      return sharp(px, { raw: { width: W, height: H, channels: 3 } })
        .jpeg({ quality: 90 })
        .toBuffer();
    }),
  );
}

const spec = (preset: 'clip' | 'dinov2'): ImagePreprocess => {
  const { resize, ...p } = PRESETS[preset];
  return { ...p, resize: resize(p.size), alpha: 'drop', background: [255, 255, 255], icc: 'ignore', exifOrientation: 'ignore' };
};

interface Rate {
  wall: number;
  cpu: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Prints the per-core table; returns the rates by label. */
export async function benchPreprocess(opts: { seconds?: number; rounds?: number } = {}): Promise<Record<string, Rate>> {
  const seconds = opts.seconds ?? 1;
  const rounds = opts.rounds ?? 5;
  const concurrency = sharp.concurrency();
  sharp.concurrency(1);
  const images = await photoJpegs(32);
  const clip = spec('clip');
  const dino = spec('dinov2');
  const chw = (p: ImagePreprocess) => new Float32Array(3 * p.size * p.size);
  const [clipOut, dinoOut] = [chw(clip), chw(dino)];
  const variants: Array<[string, (b: Buffer) => Promise<unknown>]> = [
    ['sharp decode to raw RGB', (b) => sharp(b).raw().toBuffer()],
    ['sharp resize (cubic) + centre crop', (b) => sharp(b).resize(224, 224, { fit: 'cover', kernel: 'cubic' }).raw().toBuffer()],
    [`CLIP, ${resampler.kind} resampler`, async (b) => writeChw(await preprocessRgb(b, clip, MAX_PIXELS), clip, clipOut, 0)],
    [
      'CLIP, JavaScript resampler',
      async (b) => {
        const img = await decodeRgb(b, clip, MAX_PIXELS);
        writeChw(resizeWindowJs(img.rgb, img.width, img.height, 3, geometry(img.width, img.height, clip), clip.interpolation), clip, clipOut, 0);
      },
    ],
    [`DINOv2 (256/224), ${resampler.kind} resampler`, async (b) => writeChw(await preprocessRgb(b, dino, MAX_PIXELS), dino, dinoOut, 0)],
    [
      `CLIP + DINOv2 of one image (one decode), ${resampler.kind}`,
      async (b) => {
        const r = await preprocessImages({ bytes: b, specs: [clip, dino], maxPixels: MAX_PIXELS });
        if (!('pixels' in r)) throw new Error(r.error);
        writeChw(r.pixels[0], clip, clipOut, 0);
        writeChw(r.pixels[1], dino, dinoOut, 0);
      },
    ],
  ];
  const runs = new Map<string, Rate[]>(variants.map(([label]) => [label, []]));
  for (const [, f] of variants) for (const b of images.slice(0, 8)) await f(b); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const [label, f] of variants) {
      const t = performance.now();
      const cpu = process.cpuUsage();
      let n = 0;
      while (performance.now() - t < seconds * 1000) await f(images[n++ % images.length]);
      const used = process.cpuUsage(cpu);
      runs.get(label)!.push({ wall: n / ((performance.now() - t) / 1000), cpu: n / ((used.user + used.system) / 1e6) });
    }
  }
  sharp.concurrency(concurrency);
  const rates = Object.fromEntries([...runs].map(([label, r]) => [label, { wall: median(r.map((x) => x.wall)), cpu: median(r.map((x) => x.cpu)) }]));
  const decode = rates['sharp decode to raw RGB'];
  const own = rates['sharp resize (cubic) + centre crop'];
  const kb = images.reduce((s, b) => s + b.length, 0) / images.length / 1024;
  console.log(
    `preprocessing per core: ${images.length} JPEGs ${W}x${H} (${kb.toFixed(0)} KB), one at a time, sharp.concurrency(1); ${rounds} rounds of ${seconds} s, median; resampler ${resampler.kind}${resampler.kind === 'js' ? ` (${resampler.detail})` : ''}; cores ${os.availableParallelism()}, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(`  ${'what'.padEnd(46)} ${'images/s'.padStart(9)} ${'img/CPU-s'.padStart(9)}  ${'/ decode'.padStart(8)} ${'/ sharp resize'.padStart(14)}`);
  for (const [label, r] of Object.entries(rates))
    console.log(
      `  ${label.padEnd(46)} ${r.wall.toFixed(1).padStart(9)} ${r.cpu.toFixed(1).padStart(9)}  ${(r.cpu / decode.cpu).toFixed(2).padStart(8)} ${(r.cpu / own.cpu).toFixed(2).padStart(14)}`,
    );
  const clipRate = rates[`CLIP, ${resampler.kind} resampler`];
  console.log(
    `  goal: CLIP >= 250 images per CPU-second (${clipRate.cpu.toFixed(0)}: ${clipRate.cpu >= 250 ? 'met' : 'NOT met'}), about sharp's own resize (${(clipRate.cpu / own.cpu).toFixed(2)}x it); ratios are of images per CPU-second, which a heavily loaded machine lowers too`,
  );
  return rates;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' } } });
  await benchPreprocess({ seconds: Number(values.seconds), rounds: Number(values.rounds) });
}
