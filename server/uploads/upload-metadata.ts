/**
 * `Upload-Metadata`: parsing the tus header and turning its pairs into an upload target
 * (validated folder segments and file name) and the optional sha256, mtime, base
 * revision and priority.
 */
import { AppError } from '../../contract/errors.js';
import { uploadMetadataSchema } from '../../contract/schemas/uploads.js';
import { splitPath, validateName } from '../../core/domain/names.js';
import { PRIORITY } from '../../core/ports/job-queue.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/u;
const KEY = /^[\x21-\x2b\x2d-\x7e]+$/u; // printable ASCII without space and comma
const MAX_PAIRS = 64;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Keys whose values are names or paths: a value that is not UTF-8 is an invalid name. */
const NAME_KEYS = new Set(['path', 'filename', 'folder']);

export interface UploadTarget {
  /** Validated folder segments from the root to the parent (created when missing). */
  folders: string[];
  /** Validated, NFC-normalised file name. */
  name: string;
  sha256: string | null;
  mtime: number | null;
  baseRevision: number | null;
  /** Job priority of the processing step. */
  priority: number;
  /** The pairs as received (base64 values), echoed by HEAD. */
  raw: Record<string, string>;
}

/**
 * "The Upload-Metadata request and response header MUST consist of one or more
 * comma-separated key-value pairs. The key and value MUST be separated by a space. The
 * key MUST NOT contain spaces and commas and MUST NOT be empty. The key SHOULD be ASCII
 * encoded and the value MUST be Base64 encoded. All keys MUST be unique. The value MAY
 * be empty. In these cases, the space, which would normally separate the key and the
 * value, MAY be left out." Returns the raw (base64) value of each key.
 */
export function parseUploadMetadata(header: string | undefined): Record<string, string> {
  const pairs: Record<string, string> = {};
  if (header === undefined || header.trim() === '') return pairs;
  const parts = header.split(',');
  if (parts.length > MAX_PAIRS)
    throw new AppError('BAD_REQUEST', `Upload-Metadata has more than ${MAX_PAIRS} pairs.`);
  for (const part of parts) {
    const [key = '', value = '', ...rest] = part.trim().split(' ');
    if (!KEY.test(key) || rest.length > 0) throw new AppError('BAD_REQUEST', 'Upload-Metadata is malformed.');
    if (!BASE64.test(value)) throw new AppError('BAD_REQUEST', `Upload-Metadata "${key}" is not base64.`);
    if (Object.hasOwn(pairs, key)) throw new AppError('BAD_REQUEST', `Upload-Metadata repeats "${key}".`);
    pairs[key] = value;
  }
  return pairs;
}

/** The pairs back in header form, as HEAD echoes them. */
export function formatUploadMetadata(pairs: Record<string, string>): string {
  return Object.entries(pairs)
    .map(([key, value]) => (value === '' ? key : `${key} ${value}`))
    .join(',');
}

function decodeValue(key: string, value: string): string {
  try {
    return utf8.decode(Buffer.from(value, 'base64'));
  } catch (err) {
    if (NAME_KEYS.has(key))
      throw new AppError('INVALID_NAME', `Upload-Metadata "${key}" is not UTF-8.`, { cause: err });
    throw new AppError('BAD_REQUEST', `Upload-Metadata "${key}" is not UTF-8.`, { cause: err });
  }
}

/**
 * Decodes and validates the target and options. The target is `path` when present,
 * else `filename` inside `folder` (default `/`). Throws `INVALID_PATH` / `INVALID_NAME`
 * for a refused name (nothing has been written at that point), `BAD_REQUEST` when no
 * target is given, `VALIDATION_FAILED` for a bad sha256, mtime or base revision.
 */
export function uploadTargetOf(raw: Record<string, string>): UploadTarget {
  const decoded: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) decoded[key] = decodeValue(key, value);

  // Names first: nothing else is looked at before the target is known to be valid.
  let folders: string[];
  let name: string;
  if (decoded.path !== undefined) {
    const segments = splitPath(decoded.path);
    const last = segments.pop();
    if (last === undefined) throw new AppError('INVALID_PATH', 'The path names the root folder, not a file.');
    folders = segments;
    name = last;
  } else if (decoded.filename !== undefined) {
    name = validateName(decoded.filename);
    folders = decoded.folder === undefined || decoded.folder === '' ? [] : splitPath(decoded.folder);
  } else {
    throw new AppError('BAD_REQUEST', 'Upload-Metadata needs "path" or "filename".');
  }

  const known = uploadMetadataSchema.parse({
    sha256: decoded.sha256,
    mtime: decoded.mtime,
    baseRevision: decoded.baseRevision,
    priority: decoded.priority === 'bulk' ? 'bulk' : undefined,
  });
  return {
    folders,
    name,
    sha256: known.sha256 ?? null,
    mtime: known.mtime ?? null,
    baseRevision: known.baseRevision ?? null,
    priority: known.priority === 'bulk' ? PRIORITY.bulk : PRIORITY.normal,
    raw,
  };
}
