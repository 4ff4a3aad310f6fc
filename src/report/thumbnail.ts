// A small JPEG of an image as a data: URI, so the report page carries its pictures inside it.
import sharp from 'sharp';

export async function thumbnailDataUri(bytes: Buffer, side: number, maxPixels: number): Promise<string> {
  const jpeg = await sharp(bytes, { limitInputPixels: maxPixels })
    .rotate()
    .flatten({ background: '#ffffff' })
    .resize(side, side, { fit: 'inside' })
    .jpeg({ quality: 72 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
