/**
 * What the daemon never syncs: built-in patterns (editor swap and temp files, OS litter,
 * our own `.partial` downloads) plus the folder's `.aioignore` in gitignore syntax.
 */
import fs from 'node:fs';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';

export const IGNORE_FILE = '.aioignore';

/** Always ignored, whatever `.aioignore` says. */
export const DEFAULT_IGNORES: readonly string[] = [
  '*.swp',
  '*.swx',
  '*~',
  '.#*',
  '~$*',
  '.DS_Store',
  'Thumbs.db',
  '*.partial',
  '.aio-trash/',
];

export class IgnoreRules {
  private matcher: Ignore;

  constructor(private readonly root: string) {
    this.matcher = IgnoreRules.build(root);
  }

  private static build(root: string): Ignore {
    const matcher = ignore().add([...DEFAULT_IGNORES]);
    try {
      matcher.add(fs.readFileSync(path.join(root, IGNORE_FILE), 'utf8'));
    } catch {
      // No .aioignore (or unreadable): the defaults alone apply.
    }
    return matcher;
  }

  /** Re-reads `.aioignore` (after it changed). */
  reload(): void {
    this.matcher = IgnoreRules.build(this.root);
  }

  /** `relPath` is `/`-separated and relative to the root; `isDir` matters for patterns ending in `/`. */
  ignores(relPath: string, isDir = false): boolean {
    if (relPath === '') return false;
    return this.matcher.ignores(isDir ? `${relPath}/` : relPath);
  }
}
