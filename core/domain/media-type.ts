/**
 * Media types by name, for content without magic bytes (text). Content sniffing itself
 * (file-type) happens where the bytes are: the worker for tus uploads, the API for
 * batch files it holds in memory.
 */
import path from 'node:path';
import { fileTypeFromBuffer } from 'file-type';

/** Bytes file-type needs to recognise every format it knows. */
export const SNIFF_BYTES = 4100;

const BY_EXTENSION: Readonly<Record<string, string>> = {
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.json': 'application/json',
  '.html': 'text/html',
  '.htm': 'text/html',
  '.css': 'text/css',
  '.js': 'text/javascript',
  '.ts': 'text/plain',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
};

/** Formats without magic bytes (text), by the name's extension. */
export function mediaTypeFromName(name: string): string {
  return BY_EXTENSION[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The media type of a content from its first bytes (`SNIFF_BYTES` of them, or all of a
 * smaller one): by those bytes (file-type), else by the name.
 */
export async function mediaTypeOf(bytes: Uint8Array, name: string): Promise<string> {
  const head = bytes.subarray(0, SNIFF_BYTES);
  if (head.byteLength > 0) {
    const detected = await fileTypeFromBuffer(head).catch(() => undefined);
    if (detected && (detected.mime !== 'video/mp2t' || isTransportStream(head))) return detected.mime;
  }
  return mediaTypeFromName(name);
}

/** MPEG transport stream packets: 188 bytes, or 192 with BDAV's 4-byte header first. */
const TS_LAYOUTS = [
  { first: 0, stride: 188 },
  { first: 4, stride: 192 },
] as const;
/** Packets whose sync byte must be there before the bytes count as a transport stream. */
const MIN_TS_PACKETS = 4;

/**
 * True when every packet that starts in `head` begins with the sync byte 0x47, and at
 * least `MIN_TS_PACKETS` do. file-type settles for two sync bytes, which one random file
 * in ~33,000 has: such a file (4 KiB of random bytes, seen in the benchmarks) was typed
 * `video/mp2t` and queued a transcode that could only fail.
 */
export function isTransportStream(head: Uint8Array): boolean {
  return TS_LAYOUTS.some(({ first, stride }) => {
    let packets = 0;
    for (let at = first; at < head.byteLength; at += stride) {
      if (head[at] !== 0x47) return false;
      packets += 1;
    }
    return packets >= MIN_TS_PACKETS;
  });
}
