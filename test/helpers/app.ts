/**
 * Builds a real app for tests: real adapters (embedded by default, Redis/RabbitMQ
 * when asked), a temp data dir, silent logs. No mocks.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../core/config.js';
import { openAdapters } from '../../core/adapters/open.js';
import { systemClock, type Clock } from '../../core/domain/clock.js';
import { createApp, type AppHandle } from '../../server/app.js';
import type { AppDeps } from '../../server/deps.js';
import { Metrics } from '../../server/metrics.js';

export interface TestApp extends AppHandle {
  deps: AppDeps;
  dataDir: string;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** Extra environment, e.g. { REDIS_URL } or { AMQP_URL } to use the services. */
  env?: Record<string, string>;
  clock?: Clock;
  /** Reuse a data dir (a second API instance over the same SQLite file). */
  dataDir?: string;
}

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = options.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'aio-test-')));
  const config = loadConfig({
    AIO_DATA_DIR: dataDir,
    AIO_JWT_SECRET: 'test-secret-test-secret-test-secret-0123456789',
    AIO_BCRYPT_COST: '4',
    AIO_LOG_LEVEL: 'silent',
    ...options.env,
  });
  const logger = pino({ level: 'silent' });
  const clock = options.clock ?? systemClock;
  const adapters = await openAdapters(config, { logger, clock });
  const deps: AppDeps = {
    config,
    jwtSecret: new TextEncoder().encode(config.jwtSecret),
    metadata: adapters.metadata,
    queue: adapters.queue,
    cache: adapters.cache,
    blobs: adapters.blobs,
    logger,
    clock,
    metrics: new Metrics({ queue: adapters.queue, defaultMetrics: false }),
  };
  const handle = createApp(deps);
  return {
    ...handle,
    deps,
    dataDir,
    async close() {
      await adapters.close();
      if (!options.dataDir) await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** True when a service URL is set; under CI=true a missing URL is an error, not a skip. */
export function requireService(name: 'REDIS_URL' | 'AMQP_URL'): string | undefined {
  const value = process.env[name];
  if (!value && process.env.CI === 'true') throw new Error(`${name} must be set when CI=true`);
  if (!value) console.warn(`${name} is not set: skipping the suites that need it`);
  return value;
}

export interface TestUser {
  id: string;
  email: string;
  accessToken: string;
  /** `{ Authorization: 'Bearer …' }` */
  headers: Record<string, string>;
}

let userCounter = 0;

/**
 * Creates a user and a logged-in session through the real store and token code (the
 * auth routes have their own tests; this keeps other suites independent of them).
 */
export async function createTestUser(
  t: TestApp,
  options: { email?: string; quota?: number } = {},
): Promise<TestUser> {
  const { randomUUID } = await import('node:crypto');
  const { signAccessToken } = await import('../../server/auth/access-token.js');
  const { hashSecret, newSecret } = await import('../../server/auth/secrets.js');
  userCounter += 1;
  const email = options.email ?? `user${userCounter}-${randomUUID().slice(0, 8)}@example.test`;
  const user = await t.deps.metadata.createUser({
    email,
    name: null,
    passwordHash: '$2b$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinva',
    storageQuota: options.quota ?? t.deps.config.defaultQuota,
  });
  const now = t.deps.clock.now();
  const session = await t.deps.metadata.createRefreshSession({
    userId: user.id,
    tokenHash: hashSecret(newSecret('aior_')),
    expiresAt: new Date(now.getTime() + 86_400_000),
    ip: null,
    userAgent: null,
  });
  const { token } = await signAccessToken(
    t.deps.jwtSecret,
    { userId: user.id, familyId: session.familyId, tokenVersion: user.tokenVersion },
    now,
  );
  return { id: user.id, email, accessToken: token, headers: { Authorization: `Bearer ${token}` } };
}
