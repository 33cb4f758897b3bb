/** Statistics, test-data generation and verification (sha256 of every received file). */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

export function median(values: number[]): number {
  if (!values.length) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] as number;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  return ms >= 10_000
    ? `${(ms / 1000).toFixed(1)} s`
    : ms >= 1000
      ? `${(ms / 1000).toFixed(2)} s`
      : `${Math.round(ms)} ms`;
}

export function fmtMiB(kb: number | null | undefined): string {
  return kb === null || kb === undefined || !Number.isFinite(kb) ? '—' : `${Math.round(kb / 1024)} MiB`;
}

export async function sha256File(file: string): Promise<string> {
  return sha256Stream(createReadStream(file, { highWaterMark: 1 << 20 }));
}

export async function sha256Stream(stream: AsyncIterable<unknown>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Writes `bytes` random bytes to `file`; returns its sha256. */
export async function writeRandomFile(file: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await fs.open(file, 'w');
  const chunk = Buffer.allocUnsafe(8 << 20);
  try {
    for (let left = bytes; left > 0;) {
      const n = Math.min(left, chunk.length);
      randomFillSync(chunk, 0, n);
      const view = chunk.subarray(0, n);
      hash.update(view);
      await handle.write(view);
      left -= n;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** relative path (with `/`) → sha256 */
export type Manifest = Map<string, string>;

/** `folders` folders of `perFolder` random files of `size` bytes. */
export async function writeTree(
  root: string,
  folders: number,
  perFolder: number,
  size: number,
): Promise<Manifest> {
  const manifest: Manifest = new Map();
  for (let d = 0; d < folders; d++) {
    const dir = `dir-${String(d).padStart(3, '0')}`;
    await fs.mkdir(path.join(root, dir), { recursive: true });
    for (let f = 0; f < perFolder; f++) {
      const rel = `${dir}/file-${String(f).padStart(4, '0')}.bin`;
      const buf = randomBytes(size);
      await fs.writeFile(path.join(root, rel), buf);
      manifest.set(rel, sha256(buf));
    }
  }
  return manifest;
}

/** Hashes every regular file under `root` (skipping names in `skip`). */
export async function hashTree(
  root: string,
  skip: (rel: string) => boolean = () => false,
): Promise<Manifest> {
  const out: Manifest = new Map();
  const visit = async (dir: string, rel: string) => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (skip(r)) continue;
      if (e.isDirectory()) await visit(path.join(dir, e.name), r);
      else if (e.isFile()) out.set(r, sha256(await fs.readFile(path.join(dir, e.name))));
    }
  };
  await visit(root, '');
  return out;
}

/** Throws with the first differences when `actual` does not equal `expected`. */
export function assertSameManifest(what: string, expected: Manifest, actual: Manifest): void {
  const problems: string[] = [];
  for (const [rel, sha] of expected) {
    const got = actual.get(rel);
    if (got === undefined) problems.push(`missing ${rel}`);
    else if (got !== sha) problems.push(`different ${rel}`);
  }
  for (const rel of actual.keys()) if (!expected.has(rel)) problems.push(`extra ${rel}`);
  if (problems.length)
    throw new Error(
      `${what}: ${problems.length} problem(s): ${problems.slice(0, 5).join(', ')}${problems.length > 5 ? ', …' : ''}`,
    );
}

/** Differences without throwing: how many expected files are missing or stale. */
export function manifestDiff(expected: Manifest, actual: Manifest): { missing: number; different: number } {
  let missing = 0;
  let different = 0;
  for (const [rel, sha] of expected) {
    const got = actual.get(rel);
    if (got === undefined) missing++;
    else if (got !== sha) different++;
  }
  return { missing, different };
}

/**
 * W3's change set: `modify` existing files rewritten in place with new random bytes of the
 * same size (their mtime moves, as an editor's save would), and `add` new files. The same
 * bytes go to every root given.
 */
export async function applyChanges(
  roots: string[],
  manifest: Manifest,
  modify: number,
  add: number,
  size: number,
  /** Names of added files start with this (a second change set adds other files). */
  addedPrefix = 'added',
): Promise<{ manifest: Manifest; modified: string[]; added: string[] }> {
  const next: Manifest = new Map(manifest);
  const keys = [...manifest.keys()];
  const step = Math.max(1, Math.floor(keys.length / modify));
  const modified: string[] = [];
  for (let i = 0; i < modify; i++) modified.push(keys[(i * step) % keys.length] as string);
  const added: string[] = [];
  for (let i = 0; i < add; i++)
    added.push(`dir-${String(i % 50).padStart(3, '0')}/${addedPrefix}-${String(i).padStart(4, '0')}.bin`);
  for (const rel of [...modified, ...added]) {
    const buf = randomBytes(size);
    next.set(rel, sha256(buf));
    for (const root of roots) {
      await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
      await fs.writeFile(path.join(root, rel), buf);
    }
  }
  return { manifest: next, modified, added };
}
