/**
 * The server's and worker's configuration: read once from the environment, validated
 * with zod, frozen. A bad value stops start-up with one message listing every bad
 * variable and what it expects (`ConfigError`).
 */
import path from 'node:path';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const url = (schemes: string[]) =>
  z
    .string()
    .trim()
    .min(1)
    .refine((v) => schemes.some((s) => v.startsWith(`${s}://`)), {
      message: `a URL starting with ${schemes.map((s) => `${s}://`).join(' or ')}`,
    });
const bytes = z.coerce.number().int().positive();

const schema = z.object({
  AIO_HOST: z.string().trim().min(1).default('127.0.0.1'),
  AIO_PORT: port.default(8080),
  AIO_DATA_DIR: z.string().trim().min(1).default('data'),
  AIO_STORAGE_DIR: z.string().trim().min(1).optional(),
  AIO_JWT_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  AIO_PUBLIC_URL: url(['http', 'https']).optional(),
  MONGODB_URI: url(['mongodb', 'mongodb+srv']).optional(),
  AMQP_URL: url(['amqp', 'amqps']).optional(),
  REDIS_URL: url(['redis', 'rediss']).optional(),
  AIO_WORKER: z.enum(['inline', 'off']).default('inline'),
  AIO_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  AIO_BCRYPT_COST: z.coerce.number().int().min(4).max(15).default(12),
  AIO_DEFAULT_QUOTA: bytes.default(10 * 1024 ** 3),
  AIO_MAX_UPLOAD_SIZE: bytes.default(100 * 1024 ** 3),
  AIO_TRUST_PROXY: z
    .enum(['true', 'false', '0', '1'])
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  AIO_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  AIO_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  AIO_RATE_LIMIT_WINDOW_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(15 * 60_000),
  AIO_RATE_LIMIT_LOGIN: z.coerce.number().int().min(1).default(10),
  AIO_RATE_LIMIT_LOGIN_IP: z.coerce.number().int().min(1).default(50),
  AIO_RATE_LIMIT_REGISTER: z.coerce.number().int().min(1).default(20),
  AIO_RATE_LIMIT_API: z.coerce.number().int().min(1).default(1200),
  AIO_RATE_LIMIT_API_WINDOW_MS: z.coerce.number().int().min(1000).default(60_000),
});

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  storageDir: string;
  /** Absent: generated once and kept in `<dataDir>/jwt-secret` (see `server/secret.ts`). */
  jwtSecret: string | undefined;
  publicUrl: string | undefined;
  mongodbUri: string | undefined;
  amqpUrl: string | undefined;
  redisUrl: string | undefined;
  worker: 'inline' | 'off';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  bcryptCost: number;
  defaultQuota: number;
  maxUploadSize: number;
  trustProxy: boolean;
  workerConcurrency: number;
  shutdownTimeoutMs: number;
  rateLimit: RateLimitConfig;
}

/** Fixed-window request limits (see `server/middleware/rate-limit.ts`). */
export interface RateLimitConfig {
  /** Window of the login and register limits, ms. Default 15 min. */
  authWindowMs: number;
  /** Login attempts per (ip, email) per auth window. Default 10. */
  login: number;
  /** Login attempts per ip per auth window. Default 50. */
  loginPerIp: number;
  /** Registrations per ip per auth window. Default 20. */
  register: number;
  /** Authenticated API requests per user per API window. Default 1200. */
  api: number;
  /** Window of the API limit, ms. Default 1 min. */
  apiWindowMs: number;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Reads the configuration. Empty variables count as unset. Throws `ConfigError` listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      const got = cleaned[name];
      const shown = name === 'AIO_JWT_SECRET' || got === undefined ? '' : ` (got ${JSON.stringify(got)})`;
      return `${name}: expected ${issue.message}${shown}`;
    });
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const dataDir = path.resolve(e.AIO_DATA_DIR);
  return Object.freeze({
    host: e.AIO_HOST,
    port: e.AIO_PORT,
    dataDir,
    storageDir: path.resolve(e.AIO_STORAGE_DIR ?? path.join(dataDir, 'storage')),
    jwtSecret: e.AIO_JWT_SECRET,
    publicUrl: e.AIO_PUBLIC_URL,
    mongodbUri: e.MONGODB_URI,
    amqpUrl: e.AMQP_URL,
    redisUrl: e.REDIS_URL,
    worker: e.AIO_WORKER,
    logLevel: e.AIO_LOG_LEVEL,
    bcryptCost: e.AIO_BCRYPT_COST,
    defaultQuota: e.AIO_DEFAULT_QUOTA,
    maxUploadSize: e.AIO_MAX_UPLOAD_SIZE,
    trustProxy: e.AIO_TRUST_PROXY,
    workerConcurrency: e.AIO_WORKER_CONCURRENCY,
    shutdownTimeoutMs: e.AIO_SHUTDOWN_TIMEOUT_MS,
    rateLimit: Object.freeze({
      authWindowMs: e.AIO_RATE_LIMIT_WINDOW_MS,
      login: e.AIO_RATE_LIMIT_LOGIN,
      loginPerIp: e.AIO_RATE_LIMIT_LOGIN_IP,
      register: e.AIO_RATE_LIMIT_REGISTER,
      api: e.AIO_RATE_LIMIT_API,
      apiWindowMs: e.AIO_RATE_LIMIT_API_WINDOW_MS,
    }),
  });
}
