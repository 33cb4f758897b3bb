/**
 * Entry names of folder zips. Whatever a stored name holds, the entry path must extract
 * inside the target directory on every system: relative, `/`-separated, NFC, with no
 * `.`/`..` segment, no backslash, no drive letter (`C:`), no control character. Node
 * names are validated when stored (core/domain/names.ts); this is the second wall,
 * applied at the last moment, so a bad record can never become a path traversal.
 */
import { nameKey } from '../../core/domain/names.js';

// C0 controls (incl. NUL), DEL and C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const SEPARATOR = /[/\\]/u;
const DRIVE = /^([A-Za-z]):/u;

/**
 * One path segment made safe: NFC; every character that is, or under NFKC becomes, a
 * separator or a control character turns into `_`; `.`, `..` and the empty name get a
 * leading `_`; a leading drive letter `C:` becomes `C_`.
 */
export function zipSegment(name: string): string {
  let safe = '';
  for (const char of name.normalize('NFC')) {
    const compat = char.normalize('NFKC');
    safe += CONTROL.test(char) || SEPARATOR.test(compat) || CONTROL.test(compat) ? '_' : char;
  }
  const compat = safe.normalize('NFKC');
  if (compat === '' || compat === '.' || compat === '..') safe = `_${safe}`;
  return safe.replace(DRIVE, '$1_');
}

/**
 * Hands out entry paths for one zip: `claim(parent, name)` joins the safe segment to its
 * parent's path and, should two names meet after sanitising (case-insensitively, as on
 * Windows and macOS), numbers the later one: `a (2).txt`.
 */
export class ZipEntryNames {
  private readonly taken = new Set<string>();

  /** `parent` is a path returned by an earlier `claim`, or `''` for the top level. */
  claim(parent: string, name: string): string {
    const segment = zipSegment(name);
    const prefix = parent === '' ? '' : `${parent}/`;
    let candidate = `${prefix}${segment}`;
    for (let n = 2; this.taken.has(nameKey(candidate)); n++) candidate = `${prefix}${numbered(segment, n)}`;
    this.taken.add(nameKey(candidate));
    return candidate;
  }
}

/** `report.pdf` → `report (2).pdf`; `.env` → `.env (2)`; `archive` → `archive (2)`. */
function numbered(segment: string, n: number): string {
  const dot = segment.lastIndexOf('.');
  if (dot <= 0) return `${segment} (${n})`;
  return `${segment.slice(0, dot)} (${n})${segment.slice(dot)}`;
}
