import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../contract/errors.js';
import { requireService } from '../../test/helpers/app.js';
import { loadConfig } from '../config.js';
import { systemClock } from '../domain/clock.js';
import { openAdapters, redactUrlCredentials } from './open.js';

const options = { logger: pino({ level: 'silent' }), clock: systemClock };

describe('redactUrlCredentials', () => {
  it('drops user and password and keeps host, path and query', () => {
    expect(redactUrlCredentials('amqp://guest:guest@127.0.0.1:5672/vh?heartbeat=5')).toBe(
      'amqp://127.0.0.1:5672/vh?heartbeat=5',
    );
    expect(redactUrlCredentials('mongodb://u:p%40ss@h1:27017,h2:27017/aio?replicaSet=rs0')).toBe(
      'mongodb://h1:27017,h2:27017/aio?replicaSet=rs0',
    );
    expect(redactUrlCredentials('redis://:s3cr@t/x@127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrlCredentials('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});

describe('openAdapters', () => {
  let dataDir: string;

  beforeEach(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-open-'));
  });

  afterEach(async () => {
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('opens the embedded adapters over one SQLite file in the data dir', async () => {
    const adapters = await openAdapters(loadConfig({ AIO_DATA_DIR: dataDir }), options);
    try {
      expect(adapters.kinds).toEqual({ metadata: 'sqlite', queue: 'embedded', cache: 'memory' });
      await adapters.metadata.ping();
      await adapters.queue.ping();
      await adapters.cache.ping();
      await adapters.blobs.ping();
      await adapters.queue.publish({ queue: 'file.upload', payload: {}, idempotencyKey: 'k' });
      expect((await adapters.queue.depth('file.upload')).ready).toBe(1);
      const tables = (await fs.readdir(dataDir)).filter((f) => f.startsWith('aio.db'));
      expect(tables).toContain('aio.db');
      expect(await fs.readdir(path.join(dataDir, 'storage'))).not.toHaveLength(0);
    } finally {
      await adapters.close();
    }
  });

  it('closes everything, so the stores refuse work afterwards, and tolerates a second close', async () => {
    const adapters = await openAdapters(loadConfig({ AIO_DATA_DIR: dataDir }), options);
    await adapters.close();
    await adapters.close();
    await expect(adapters.metadata.ping()).rejects.toBeInstanceOf(UnavailableError);
    await expect(adapters.queue.ping()).rejects.toBeInstanceOf(UnavailableError);
    await expect(adapters.cache.ping()).rejects.toBeInstanceOf(UnavailableError);
  });

  it('names the component and hides the credentials when one adapter cannot open, closing the others', async () => {
    const config = loadConfig({ AIO_DATA_DIR: dataDir, REDIS_URL: 'redis://admin:topsecret@127.0.0.1:1/0' });
    const error = await openAdapters(config, options).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toMatch(/^Cannot open the cache at redis:\/\/127\.0\.0\.1:1\/0: /);
    expect((error as Error).message).not.toContain('topsecret');
    // SQLite removes the write-ahead log when the last connection closes: nothing was left open.
    expect(await fs.readdir(dataDir)).toContain('aio.db');
    expect(await fs.readdir(dataDir)).not.toContain('aio.db-wal');
  });
});

const redisUrl = requireService('REDIS_URL');
const amqpUrl = requireService('AMQP_URL');

describe.runIf(redisUrl && amqpUrl)('openAdapters with services', () => {
  it('chooses Redis and RabbitMQ by their URLs and keeps SQLite for metadata', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-open-'));
    const config = loadConfig({ AIO_DATA_DIR: dataDir, REDIS_URL: redisUrl, AMQP_URL: amqpUrl });
    const adapters = await openAdapters(config, options);
    try {
      expect(adapters.kinds).toEqual({ metadata: 'sqlite', queue: 'rabbitmq', cache: 'redis' });
      await adapters.queue.ping();
      await adapters.cache.ping();
    } finally {
      await adapters.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
