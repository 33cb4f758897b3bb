/**
 * End to end: an upload killed with SIGKILL resumes; quota and partial batches end with
 * their exit codes. Real `bin/aio`, real `aio-server`.
 */
import { createHash, randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aio, aioProcess, lastJson } from './helpers/cli.js';
import { startServer, stopAllProcesses, tempDir, type ServerProcess } from './helpers/processes.js';

let server: ServerProcess;
let dataDir: string;
let env: Record<string, string>;

async function stagingBytes(): Promise<number> {
  const dir = path.join(dataDir, 'storage', 'staging');
  let total = 0;
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    total += (await fs.stat(path.join(dir, name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

beforeAll(async () => {
  dataDir = await tempDir('aio-resume-data-');
  server = await startServer({
    AIO_DATA_DIR: dataDir,
    AIO_BCRYPT_COST: '4',
    AIO_LOG_LEVEL: 'warn',
    AIO_DEFAULT_QUOTA: String(400 * 1024 * 1024),
  });
  env = { AIO_SERVER: server.url, AIO_CONFIG_DIR: await tempDir('aio-resume-config-') };
  const password = 'resume password 1';
  expect(
    (await aio(['register', '--email', 'r@example.test', '--password-stdin'], { env, input: password }))
      .exitCode,
  ).toBe(0);
  expect(
    (await aio(['login', '--email', 'r@example.test', '--password-stdin'], { env, input: password }))
      .exitCode,
  ).toBe(0);
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
});

describe('aio upload interrupted and resumed', () => {
  it('resumes a 200 MiB upload killed with SIGKILL halfway, sending less than 60% again, and verifies', async () => {
    const work = await tempDir('aio-resume-work-');
    const file = path.join(work, 'big.bin');
    const size = 200 * 1024 * 1024;
    const hash = createHash('sha256');
    const handle = await fs.open(file, 'w');
    for (let written = 0; written < size; written += 8 * 1024 * 1024) {
      const chunk = randomBytes(8 * 1024 * 1024);
      hash.update(chunk);
      await handle.write(chunk);
    }
    await handle.close();
    const expected = hash.digest('hex');

    // Throttle nothing: kill once the server holds at least 45% of the bytes.
    const first = aioProcess(['upload', file, '/big.bin', '--json'], { env });
    const deadline = Date.now() + 60_000;
    while ((await stagingBytes()) < size * 0.45) {
      if (Date.now() > deadline || first.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill('SIGKILL');
    await first;
    const before = await stagingBytes();
    expect(before).toBeGreaterThan(size * 0.4);
    expect(before).toBeLessThan(size);

    const second = await aio(['upload', file, '/big.bin', '--json'], { env });
    expect(second.exitCode, second.stderr).toBe(0);
    const outcome = lastJson<{ how: string; bytesSent: number; sha256: string; status: string }>(
      second.stdout
        .split('\n')
        .filter((l) => l.includes('"event":"uploaded"'))
        .join('\n'),
    );
    expect(outcome).toMatchObject({ how: 'resumed', sha256: expected, status: 'ready' });
    expect(outcome.bytesSent).toBeLessThan(size * 0.6);

    const ls = await aio(['ls', '/', '--json'], { env });
    expect(JSON.parse(ls.stdout)).toContainEqual(
      expect.objectContaining({ name: 'big.bin', sha256: expected, size }),
    );
  }, 180_000);

  it('ends with exit code 7 when the quota would be exceeded', async () => {
    const work = await tempDir('aio-quota-');
    const file = path.join(work, 'too-big.bin');
    await fs.writeFile(file, Buffer.alloc(1));
    await fs.truncate(file, 300 * 1024 * 1024); // sparse: 300 MiB on top of 200 MiB stored > 400 MiB quota
    const r = await aio(['upload', file, '/too-big.bin'], { env });
    expect(r.exitCode).toBe(7);
    expect(r.stderr).toMatch(/quota/i);
  }, 60_000);

  it('keeps going past one unreadable file in a batch and ends with exit code 8', async () => {
    // Root reads a chmod 000 file anyway, so as root the CLI runs as an unprivileged user.
    const asRoot = os.userInfo().uid === 0;
    if (asRoot && !fsSync.existsSync('/usr/bin/setpriv'))
      throw new Error('setpriv is needed to test as root');
    const work = await tempDir('aio-partial-');
    await fs.chmod(work, 0o755);
    const tree = path.join(work, 'batch');
    await fs.mkdir(tree, { mode: 0o755 });
    for (let i = 0; i < 5; i++)
      await fs.writeFile(path.join(tree, `ok-${i}.txt`), `fine ${i}`, { mode: 0o644 });
    await fs.writeFile(path.join(tree, 'unreadable.txt'), 'secret', { mode: 0o000 });
    await fs.chmod(path.join(tree, 'unreadable.txt'), 0o000);

    const created = await aio(['token', 'create', '--name', 'partial', '--json'], { env });
    const { token } = JSON.parse(created.stdout) as { token: string };
    const config = await tempDir('aio-partial-config-');
    if (asRoot) await fs.chown(config, 65534, 65534);
    const r = await aio(['upload', '-r', tree, '/partial', '--json'], {
      env: { AIO_SERVER: server.url, AIO_CONFIG_DIR: config, AIO_TOKEN: token },
      asUser: asRoot ? 65534 : undefined,
      cwd: work,
    });
    expect(r.exitCode, r.stderr).toBe(8);
    expect(r.stderr).toMatch(/unreadable\.txt/);
    const summary = lastJson<{ uploaded: number; failed: unknown[] }>(
      r.stdout
        .split('\n')
        .filter((l) => l.includes('"summary"'))
        .join('\n'),
    );
    expect(summary.uploaded).toBe(5);
    expect(summary.failed).toHaveLength(1);
    const ls = await aio(['ls', '/partial/batch', '--json'], { env });
    expect((JSON.parse(ls.stdout) as Array<{ name: string }>).map((e) => e.name).sort()).toEqual([
      'ok-0.txt',
      'ok-1.txt',
      'ok-2.txt',
      'ok-3.txt',
      'ok-4.txt',
    ]);
  }, 60_000);
});
