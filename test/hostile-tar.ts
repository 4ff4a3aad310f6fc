// Tar bytes that TarWriter would never write, for tests and the fuzz bench: any name (a NUL through
// a pax `path`), any type (symlinks, hardlinks), any size field (one that lies), written field by
// field with a checksum that passes, so the reader's later checks are the ones exercised.
const BLOCK = 512;

/** Sets the header's checksum field from its bytes, as every tar writer does. */
export function setChecksum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return block;
}

/** A ustar header block: `size` is what the header claims, whatever data follows. */
export function tarHeader(name: string | Buffer, size: number, type = '0', linkname = ''): Buffer {
  const block = Buffer.alloc(BLOCK);
  Buffer.from(name).copy(block, 0, 0, 100);
  block.write('0000644\u0000', 100, 'latin1');
  block.write('0000000\u0000', 108, 'latin1');
  block.write('0000000\u0000', 116, 'latin1');
  block.write(`${size.toString(8).padStart(11, '0')}\u0000`, 124, 'latin1');
  block.write('00000000000\u0000', 136, 'latin1');
  block.write(type, 156, 'latin1');
  Buffer.from(linkname).copy(block, 157, 0, 100);
  block.write('ustar\u000000', 257, 'latin1');
  return setChecksum(block);
}

const padding = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** A whole member: header, data, padding. */
export function tarMember(name: string | Buffer, data: Buffer, type = '0', linkname = ''): Buffer {
  return Buffer.concat([tarHeader(name, data.length, type, linkname), data, padding(data.length)]);
}

/** A pax extended header ('x') whose records apply to the member after it, e.g. {path: 'a\0b.png'}. */
export function paxMember(records: Record<string, string>): Buffer {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const record = ` ${k}=${v}\n`;
    let length = Buffer.byteLength(record);
    length += String(length + String(length).length).length; // the length counts its own digits
    body += `${length}${record}`;
  }
  return tarMember('././@PaxHeader', Buffer.from(body, 'utf8'), 'x');
}

export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
