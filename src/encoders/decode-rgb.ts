// Encoded image bytes to full-size 8-bit RGB, as PIL's Image.open(...).convert("RGB") gives it
// (the loader CLIP, open_clip, DINOv2 and Hugging Face pipelines use): the embedded ICC profile is
// ignored, alpha is dropped (not composited), grayscale is replicated, 16-bit RGB keeps its high
// byte, 16-bit grayscale is clipped at 255 (PIL's I -> RGB), CMYK uses PIL's cmyk2rgb, EXIF
// orientation is not applied, and JPEGs are always decoded at full size. Each of these can be
// switched to the other common behaviour by config. sharp only decodes: its pipeline stays in the
// image's own colour space so no conversion of its own happens on the way.
import sharp from 'sharp';

export interface DecodeOptions {
  /** `drop`: as convert("RGB"); `flatten`: composite onto `background` first. */
  alpha: 'drop' | 'flatten';
  background: [number, number, number];
  /** `ignore`: as PIL; `apply`: convert to sRGB through the embedded profile. */
  icc: 'ignore' | 'apply';
  /** `ignore`: as Image.open; `apply`: as ImageOps.exif_transpose (Hugging Face's load_image). */
  exifOrientation: 'ignore' | 'apply';
}

export interface RgbImage {
  width: number;
  height: number;
  /** width * height * 3, row-major RGB. */
  rgb: Uint8Array;
}

/** PIL's MULDIV255: a * b / 255, rounded, in integers. */
const muldiv255 = (a: number, b: number) => {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
};

/**
 * Whether the header alone says the image is 8-bit sRGB: a JPEG with 3 components at 8-bit
 * precision, which libvips always loads as sRGB. Then the common photo needs one sharp call
 * instead of metadata() and a decode; anything else asks metadata().
 */
export function sniffSrgb8(bytes: Uint8Array): boolean {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return false;
  let i = 2;
  while (i + 9 < bytes.length && bytes[i] === 0xff) {
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width, components.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return bytes[i + 4] === 8 && bytes[i + 9] === 3;
    if (marker === 0xd9 || marker === 0xda) return false;
    i += 2 + ((bytes[i + 2] << 8) | bytes[i + 3]);
  }
  return false;
}

/** Throws on bytes sharp cannot decode, or with more than `maxPixels` pixels. */
export async function decodeRgb(bytes: Uint8Array, o: DecodeOptions, maxPixels: number): Promise<RgbImage> {
  const input = { limitInputPixels: maxPixels, failOn: 'error' as const, ignoreIcc: o.icc === 'ignore', autoOrient: o.exifOrientation === 'apply' };
  // With the profile applied, sharp's own conversion to 8-bit sRGB is the conversion asked for, so
  // the image's own space and depth do not matter; otherwise they come from the header or metadata().
  const meta = o.icc === 'apply' || sniffSrgb8(bytes) ? { space: 'srgb', depth: 'uchar' } : await sharp(bytes, input).metadata();
  const sixteen = meta.depth === 'ushort';
  const space = o.icc === 'apply' ? 'srgb' : (meta.space as keyof sharp.ColourspaceEnum);
  const image = sharp(bytes, input).pipelineColourspace(space).toColourspace(space);
  const depth = sixteen && o.icc !== 'apply' ? 'ushort' : 'uchar';
  const { data, info } = await image.raw({ depth }).toBuffer({ resolveWithObject: true });
  // Plain 8-bit RGB (most photos) is already what PIL gives.
  if (depth === 'uchar' && space !== 'cmyk' && info.channels === 3) return { width: info.width, height: info.height, rgb: data };
  const n = info.width * info.height;
  const ch = info.channels;
  const src = depth === 'ushort' ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)) : data;
  const cmyk = space === 'cmyk';
  const grey = !cmyk && ch <= 2;
  const hasAlpha = !cmyk && (ch === 2 || ch === 4);
  // 16-bit: colour keeps the high byte (PIL reads "RGB;16B"); grey is mode I, clipped at 255.
  const to8 = depth !== 'ushort' ? (v: number) => v : grey ? (v: number) => (v > 255 ? 255 : v) : (v: number) => v >> 8;
  const alphaMax = depth === 'ushort' ? 65535 : 255;
  const rgb = new Uint8Array(n * 3);
  const [br, bg, bb] = o.background;
  for (let i = 0; i < n; i++) {
    const p = i * ch;
    let r: number, g: number, b: number;
    if (cmyk) {
      const nk = 255 - src[p + 3];
      r = nk - muldiv255(src[p], nk);
      g = nk - muldiv255(src[p + 1], nk);
      b = nk - muldiv255(src[p + 2], nk);
    } else if (grey) {
      r = g = b = to8(src[p]);
    } else {
      r = to8(src[p]);
      g = to8(src[p + 1]);
      b = to8(src[p + 2]);
    }
    if (hasAlpha && o.alpha === 'flatten') {
      const a = src[p + ch - 1] / alphaMax;
      r = Math.round(r * a + br * (1 - a));
      g = Math.round(g * a + bg * (1 - a));
      b = Math.round(b * a + bb * (1 - a));
    }
    rgb[i * 3] = r < 0 ? 0 : r;
    rgb[i * 3 + 1] = g < 0 ? 0 : g;
    rgb[i * 3 + 2] = b < 0 ? 0 : b;
  }
  return { width: info.width, height: info.height, rgb };
}

/** `#rgb` or `#rrggbb` to [r, g, b]; `where` names the config key in the error. */
export function parseColour(s: string, where: string): [number, number, number] {
  const m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(s.trim());
  if (!m) throw new Error(`${where}: "${s}" is not a colour (expected #rrggbb)`);
  const h = m[1].length === 3 ? [...m[1]].map((c) => c + c).join('') : m[1];
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)) as [number, number, number];
}
