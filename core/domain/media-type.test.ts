import { describe, expect, it } from 'vitest';
import { isTransportStream, mediaTypeOf } from './media-type.js';

/** `packets` MPEG-TS packets (188 bytes, or 192 with a 4-byte BDAV header), sync byte first. */
function transportStream(packets: number, bdav = false): Buffer {
  const stride = bdav ? 192 : 188;
  const bytes = Buffer.alloc(packets * stride, 0xff);
  for (let i = 0; i < packets; i++) bytes[i * stride + (bdav ? 4 : 0)] = 0x47;
  return bytes;
}

describe('mediaTypeOf', () => {
  it('types an MPEG transport stream, plain or BDAV, as video/mp2t', async () => {
    expect(await mediaTypeOf(transportStream(40), 'a.ts')).toBe('video/mp2t');
    expect(await mediaTypeOf(transportStream(40, true), 'a.m2ts')).toBe('video/mp2t');
    // Only the sniffed head (SNIFF_BYTES) counts: what comes after may be anything.
    const long = Buffer.concat([transportStream(40), Buffer.alloc(10_000, 0x00)]);
    expect(await mediaTypeOf(long, 'a.ts')).toBe('video/mp2t');
  });

  it('does not take two sync bytes in other content for a transport stream', async () => {
    const noise = Buffer.alloc(4096, 0x11);
    noise[0] = 0x47;
    noise[188] = 0x47;
    expect(await mediaTypeOf(noise, 'noise.bin')).toBe('application/octet-stream');
    expect(await mediaTypeOf(noise, 'notes.txt')).toBe('text/plain');
    // Too short to tell: three packets are not enough.
    expect(await mediaTypeOf(transportStream(3), 'short.bin')).toBe('application/octet-stream');
  });

  it('still types content by its magic bytes, and text by its name', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    expect(await mediaTypeOf(png, 'x.bin')).toBe('image/png');
    expect(await mediaTypeOf(Buffer.from('# Title\n'), 'README.md')).toBe('text/markdown');
    expect(await mediaTypeOf(Buffer.alloc(0), 'empty.json')).toBe('application/json');
  });
});

describe('isTransportStream', () => {
  it('needs the sync byte at every packet start in the head, and at least four packets', () => {
    expect(isTransportStream(transportStream(4))).toBe(true);
    expect(isTransportStream(transportStream(4, true))).toBe(true);
    const broken = transportStream(20);
    broken[188 * 7] = 0x00;
    expect(isTransportStream(broken)).toBe(false);
    expect(isTransportStream(transportStream(3))).toBe(false);
  });
});
