/**
 * The distributed path on one machine: `aio-server` with AIO_WORKER=off and a separate
 * `aio-worker` process share one SQLite file, over real RabbitMQ and Redis. A file
 * uploaded through the server becomes ready only because the worker consumed the
 * `file.upload` job.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requireService } from './helpers/app.js';
import { aio } from './helpers/cli.js';
import { spawnProgram, startServer, stopAllProcesses, tempDir, waitForReady } from './helpers/processes.js';

const redisUrl = requireService('REDIS_URL');
const amqpUrl = requireService('AMQP_URL');

afterEach(async () => {
  await stopAllProcesses();
});

describe.runIf(redisUrl && amqpUrl)('a server and a separate worker over RabbitMQ and Redis', () => {
  it('commits an upload through the file.upload job consumed by the worker process', async () => {
    const dataDir = await tempDir('aio-dist-');
    const common = {
      AIO_DATA_DIR: dataDir,
      AIO_JWT_SECRET: 'distributed-test-secret-0123456789abcdef',
      AIO_BCRYPT_COST: '4',
      AIO_LOG_LEVEL: 'info',
      REDIS_URL: redisUrl as string,
      AMQP_URL: amqpUrl as string,
    };
    const server = await startServer({ ...common, AIO_WORKER: 'off' });
    const ready = (await waitForReady(server.url)) as { components: Record<string, { status: string }> };
    expect(ready.components.queue?.status).toBe('up');

    const env = { AIO_SERVER: server.url, AIO_CONFIG_DIR: await tempDir('aio-dist-cli-') };
    const password = 'distributed pw 1';
    expect(
      (await aio(['register', '--email', 'd@example.test', '--password-stdin'], { env, input: password }))
        .exitCode,
    ).toBe(0);
    expect(
      (await aio(['login', '--email', 'd@example.test', '--password-stdin'], { env, input: password }))
        .exitCode,
    ).toBe(0);

    const work = await tempDir('aio-dist-work-');
    const file = path.join(work, 'payload.bin');
    const bytes = randomBytes(256 * 1024);
    await fs.writeFile(file, bytes);

    // Without a worker the upload cannot become ready.
    const pending = await aio(['upload', file, '/payload.bin', '--no-wait', '--json'], { env });
    expect(pending.exitCode, pending.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    const before = JSON.parse((await aio(['ls', '/', '--json'], { env })).stdout) as unknown[];
    expect(before).toEqual([]);

    const worker = spawnProgram('aio-worker', common);
    await worker.waitForLine(/"queue":"file\.upload".*"outcome":"success"/, 30_000);
    const deadline = Date.now() + 20_000;
    let listed: Array<{ name: string; sha256: string; status: string }> = [];
    while (Date.now() < deadline) {
      listed = JSON.parse((await aio(['ls', '/', '--json'], { env })).stdout) as typeof listed;
      if (listed.length) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(listed).toEqual([
      expect.objectContaining({
        name: 'payload.bin',
        status: 'ready',
        sha256: createHash('sha256').update(bytes).digest('hex'),
      }),
    ]);
    expect(server.stdout()).not.toMatch(/"queue":"file\.upload"/);
    expect(await worker.stop('SIGTERM'), worker.describe()).toEqual({ code: 0, signal: null });
    expect(await server.stop('SIGTERM'), server.describe()).toEqual({ code: 0, signal: null });
  }, 90_000);
});
