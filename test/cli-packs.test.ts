/**
 * End to end: small files synced by the real `bin/aio` are stored by the real
 * `aio-server` in pack files, not as a file each, and come back byte for byte through
 * `aio download`, also from a server restarted on the same data directory (the pack
 * index is on disk, not in the process).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aio, lastJson } from './helpers/cli.js';
import { startServer, stopAllProcesses, tempDir } from './helpers/processes.js';

const PASSWORD = 'correct horse battery';
const sha = (buf: Buffer): string => createHash('sha256').update(buf).digest('hex');

afterAll(async () => {
  await stopAllProcesses();
});

describe('small files in pack files, through the real CLI and server', () => {
  it('stores a synced tree in packs and serves its bytes back, before and after a server restart', async () => {
    const dataDir = await tempDir('aio-packs-data-');
    const serverEnv = { AIO_DATA_DIR: dataDir, AIO_BCRYPT_COST: '4', AIO_LOG_LEVEL: 'warn' };
    const first = await startServer(serverEnv);
    const env = { AIO_SERVER: first.url, AIO_CONFIG_DIR: await tempDir('aio-packs-config-') };
    expect(
      (await aio(['register', '--email', 'pat@example.test', '--password-stdin'], { env, input: PASSWORD }))
        .exitCode,
    ).toBe(0);
    const login = await aio(['login', '--email', 'pat@example.test', '--password-stdin'], {
      env,
      input: `${PASSWORD}\n`,
    });
    expect(login.exitCode, login.stderr).toBe(0);

    const src = await tempDir('aio-packs-src-');
    const contents = new Map<string, Buffer>();
    for (let i = 0; i < 60; i++) {
      const rel = `dir-${i % 3}/file-${i}.bin`;
      const bytes = randomBytes(500 + i * 37);
      await fs.mkdir(path.join(src, path.dirname(rel)), { recursive: true });
      await fs.writeFile(path.join(src, rel), bytes);
      contents.set(rel, bytes);
    }
    const synced = await aio(['sync', src, '/packed', '--json'], { env });
    expect(synced.exitCode, synced.stderr).toBe(0);
    expect(lastJson<{ uploaded: number }>(synced.stdout)).toMatchObject({ uploaded: 60, failed: [] });

    // On disk: pack files, and none of these contents as a file of its own.
    const storage = path.join(dataDir, 'storage');
    expect(
      (await fs.readdir(path.join(storage, 'packs'))).filter((n) => n.endsWith('.pack')).length,
    ).toBeGreaterThan(0);
    for (const bytes of contents.values()) {
      const loose = path.join(storage, 'blobs', sha(bytes).slice(0, 2), sha(bytes));
      await expect(fs.access(loose)).rejects.toMatchObject({ code: 'ENOENT' });
    }

    const downloadAll = async (into: string): Promise<void> => {
      const down = await aio(['download', '-r', '/packed', into, '--json'], { env });
      expect(down.exitCode, down.stderr).toBe(0);
      for (const [rel, bytes] of contents)
        expect((await fs.readFile(path.join(into, rel))).equals(bytes), rel).toBe(true);
    };
    await downloadAll(path.join(await tempDir('aio-packs-down-'), 'packed'));

    // The same data directory and port, a new process: the index was on disk.
    await first.stop();
    const port = new URL(first.url).port;
    const second = await startServer({ ...serverEnv, AIO_PORT: port });
    expect(second.url).toBe(first.url);
    await downloadAll(path.join(await tempDir('aio-packs-down-'), 'packed'));
  }, 120_000);
});
