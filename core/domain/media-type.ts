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

/** The media type of a whole small content: by its bytes (file-type), else by the name. */
export async function mediaTypeOf(bytes: Uint8Array, name: string): Promise<string> {
  if (bytes.byteLength > 0) {
    const detected = await fileTypeFromBuffer(bytes.subarray(0, SNIFF_BYTES)).catch(() => undefined);
    if (detected) return detected.mime;
  }
  return mediaTypeFromName(name);
}
