// How often sharp's message for a failed decode is lost ("Unknown error") or is another image's,
// when images fail side by side, and how often after src/util/sharp-message.ts redoes each failure
// alone. libvips keeps one error buffer per process, so concurrent failures race on it.
// Run: npx tsx bench/sharp-error-race.ts
import sharp from 'sharp';
import { allWithOwnErrors } from '../src/util/sharp-message.ts';

const w = 600;
const h = 400;
const raw = Buffer.alloc(w * h * 3);
for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
const jpeg = await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
  .jpeg({ quality: 90 })
  .toBuffer();
const png = await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
  .png()
  .toBuffer();
// A third are JPEGs cut short, a third PNGs cut short, the rest whole.
const inputs = Array.from({ length: 64 }, (_, i) =>
  i % 3 === 0 ? jpeg.subarray(0, Math.floor(jpeg.length * (0.3 + i / 200))) : i % 3 === 1 ? png.subarray(0, Math.floor(png.length * 0.5)) : png,
);
const expected = (i: number) => (i % 3 === 0 ? /VipsJpeg/ : i % 3 === 1 ? /pngload/ : undefined);
const decode = (b: Buffer) => () => sharp(b, { failOn: 'error' }).resize(224, 224, { fit: 'cover' }).removeAlpha().raw().toBuffer();

function tally(results: Array<Buffer | Error>, t: { failed: number; unknown: number; wrong: number }): void {
  results.forEach((r, i) => {
    if (!(r instanceof Error)) return;
    t.failed++;
    if (/^Unknown error$/.test(r.message)) t.unknown++;
    else if (!expected(i)?.test(r.message)) t.wrong++;
  });
}

const side = { failed: 0, unknown: 0, wrong: 0 };
const alone = { failed: 0, unknown: 0, wrong: 0 };
for (let round = 0; round < 20; round++) {
  tally(await Promise.all(inputs.map((b) => decode(b)().catch((e: Error) => e))), side);
  tally(await allWithOwnErrors(inputs.map(decode)), alone);
}
console.log(`side by side (Promise.all):  ${side.failed} failures, ${side.unknown} "Unknown error", ${side.wrong} with another image's message`);
console.log(`allWithOwnErrors:            ${alone.failed} failures, ${alone.unknown} "Unknown error", ${alone.wrong} with another image's message`);
