/**
 * The HMAC key for access tokens and signed URLs. `AIO_JWT_SECRET` when set (its UTF-8
 * bytes); otherwise 256 random bits generated on the first start and kept in
 * `<dataDir>/jwt-secret`, so tokens survive restarts and every process sharing the
 * data dir (server, separate workers) signs with the same key.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../core/config.js';

export const JWT_SECRET_FILE = 'jwt-secret';
const SECRET_BYTES = 32;

/**
 * Returns the key. Creating the file is safe against a crash (the secret is written to a
 * 0600 temp file created with O_EXCL and fsynced before it appears under its name) and
 * against a race between processes starting together (the temp file is hard-linked
 * into place, which fails instead of replacing a secret someone else created; the
 * loser reads the winner's). A file that exists but does not hold a valid secret is
 * an error, never silently replaced: replacing it would log everyone out.
 */
export async function resolveJwtSecret(
  config: Pick<Readonly<Config>, 'jwtSecret' | 'dataDir'>,
): Promise<Uint8Array> {
  if (config.jwtSecret !== undefined) return new TextEncoder().encode(config.jwtSecret);
  const file = path.join(config.dataDir, JWT_SECRET_FILE);
  const existing = await readSecret(file);
  if (existing) return existing;
  await fs.mkdir(config.dataDir, { recursive: true });
  const created = await createSecret(file);
  return created ?? ((await readSecret(file)) as Uint8Array);
}

async function readSecret(file: string): Promise<Uint8Array | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const trimmed = text.trim();
  const bytes = Buffer.from(trimmed, 'base64url');
  if (!/^[A-Za-z0-9_-]+$/.test(trimmed) || bytes.length < SECRET_BYTES) {
    throw new Error(
      `${file} does not hold a valid secret (expected ${SECRET_BYTES} bytes, base64url). ` +
        'Restore it, or delete it to generate a new one (this signs everyone out).',
    );
  }
  return new Uint8Array(bytes);
}

/** Writes a new secret; `null` when another process created the file first. */
async function createSecret(file: string): Promise<Uint8Array | null> {
  const secret = randomBytes(SECRET_BYTES);
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${secret.toString('base64url')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await publish(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw err;
  } finally {
    await fs.rm(temp, { force: true });
  }
  await syncDirectory(path.dirname(file));
  return new Uint8Array(secret);
}

/** Puts `temp` in place under `file` without ever replacing an existing file. */
async function publish(temp: string, file: string): Promise<void> {
  try {
    await fs.link(temp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Filesystems without hard links: rename (atomic, but the last of two racers wins).
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw err;
    await fs.rename(temp, file);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
