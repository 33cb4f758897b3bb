/**
 * Where a login session is kept: the OS keychain through `@napi-rs/keyring`, or, where
 * no keychain answers (servers, CI, containers) or `AIO_NO_KEYRING=1`, a 0600 file in
 * the 0700 config dir (with a one-line warning). One entry per profile and server.
 *
 * `SessionTokens` is the `TokenProvider` the API client uses: it hands out the cached
 * access token while it is valid and otherwise refreshes — under a lock file, because
 * refresh tokens rotate on every use and two processes refreshing with the same token
 * would look like token theft to the server and end the session.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../contract/errors.js';
import type { TokenProvider } from '../contract/client.js';
import { ensurePrivateDir, readJsonFile, writeFileAtomic } from './paths.js';

export interface StoredSession {
  server: string;
  email: string;
  refreshToken: string;
  accessToken?: string;
  /** ms since epoch */
  accessExpiresAt?: number;
}

const SERVICE = 'aio-storage';

interface Backend {
  read(account: string): Promise<string | null>;
  write(account: string, value: string): Promise<void>;
  remove(account: string): Promise<void>;
}

class FileBackend implements Backend {
  constructor(
    private readonly dir: string,
    private readonly file = path.join(dir, 'credentials.json'),
  ) {}
  async read(account: string): Promise<string | null> {
    const data = await readJsonFile<Record<string, string>>(this.file);
    return data?.[account] ?? null;
  }
  async write(account: string, value: string): Promise<void> {
    await ensurePrivateDir(this.dir);
    const data = (await readJsonFile<Record<string, string>>(this.file)) ?? {};
    data[account] = value;
    await writeFileAtomic(this.file, JSON.stringify(data), 0o600);
  }
  async remove(account: string): Promise<void> {
    const data = await readJsonFile<Record<string, string>>(this.file);
    if (!data || !(account in data)) return;
    delete data[account];
    await writeFileAtomic(this.file, JSON.stringify(data), 0o600);
  }
}

class KeyringBackend implements Backend {
  private constructor(private readonly Entry: new (service: string, account: string) => KeyringEntry) {}

  /** Null when no keychain answers here. */
  static async probe(): Promise<KeyringBackend | null> {
    try {
      const mod = (await import('@napi-rs/keyring')) as unknown as {
        Entry: new (service: string, account: string) => KeyringEntry;
      };
      const entry = new mod.Entry(SERVICE, '__probe__');
      entry.setPassword('1');
      entry.deletePassword();
      return new KeyringBackend(mod.Entry);
    } catch {
      return null;
    }
  }
  async read(account: string): Promise<string | null> {
    try {
      return new this.Entry(SERVICE, account).getPassword() ?? null;
    } catch {
      return null;
    }
  }
  async write(account: string, value: string): Promise<void> {
    new this.Entry(SERVICE, account).setPassword(value);
  }
  async remove(account: string): Promise<void> {
    try {
      new this.Entry(SERVICE, account).deletePassword();
    } catch {
      // absent already
    }
  }
}

interface KeyringEntry {
  getPassword(): string | null | undefined;
  setPassword(value: string): void;
  deletePassword(): unknown;
}

export class CredentialStore {
  private backend: Backend | null = null;

  constructor(
    private readonly dir: string,
    private readonly account: string,
    private readonly options: { noKeyring: boolean; warn: (message: string) => void },
  ) {}

  private async open(): Promise<Backend> {
    if (this.backend) return this.backend;
    const keyring = this.options.noKeyring ? null : await KeyringBackend.probe();
    this.backend = keyring ?? new FileBackend(this.dir);
    return this.backend;
  }

  async load(): Promise<StoredSession | null> {
    const raw = await (await this.open()).read(this.account);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as StoredSession;
    } catch {
      return null;
    }
  }

  async save(session: StoredSession): Promise<void> {
    const backend = await this.open();
    if (backend instanceof FileBackend && !this.options.noKeyring) {
      this.options.warn(
        `No OS keychain answered; the session is stored in ${path.join(this.dir, 'credentials.json')} (mode 0600).`,
      );
    }
    await backend.write(this.account, JSON.stringify(session));
  }

  async clear(): Promise<void> {
    await (await this.open()).remove(this.account);
  }

  /** Runs `fn` holding an exclusive lock file (stale after 15 s). */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await ensurePrivateDir(this.dir);
    const lock = path.join(this.dir, 'refresh.lock');
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const handle = await fs.open(lock, 'wx', 0o600);
        await handle.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const stat = await fs.stat(lock).catch(() => null);
        if (stat && Date.now() - stat.mtimeMs > 15_000) await fs.rm(lock, { force: true });
        if (Date.now() > deadline) throw new AppError('SERVICE_UNAVAILABLE', `Could not lock ${lock}.`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    try {
      return await fn();
    } finally {
      await fs.rm(lock, { force: true });
    }
  }
}

/** A fixed token from the environment (`AIO_TOKEN`): used as is, nothing stored. */
export function staticTokens(token: string): TokenProvider {
  return { current: async () => token, refresh: async () => null };
}

export interface RefreshResponse {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

/** Access tokens from a stored session, refreshed (and rotated) under a lock when they expire. */
export class SessionTokens implements TokenProvider {
  /** The token last handed out: when the server rejects it, a refresh must not return it again. */
  private lastToken: string | null = null;

  constructor(
    private readonly store: CredentialStore,
    private readonly doRefresh: (refreshToken: string) => Promise<RefreshResponse>,
    private readonly now: () => number = Date.now,
  ) {}

  async current(): Promise<string | null> {
    const session = await this.store.load();
    if (!session) return null;
    if (session.accessToken && (session.accessExpiresAt ?? 0) - 30_000 > this.now()) {
      this.lastToken = session.accessToken;
      return session.accessToken;
    }
    return this.refresh();
  }

  async refresh(): Promise<string | null> {
    return this.store.withLock(async () => {
      const session = await this.store.load();
      if (!session) return null;
      // Another process may have refreshed while we waited for the lock.
      if (
        session.accessToken &&
        session.accessToken !== this.lastToken &&
        (session.accessExpiresAt ?? 0) - 30_000 > this.now()
      ) {
        this.lastToken = session.accessToken;
        return session.accessToken;
      }
      try {
        const next = await this.doRefresh(session.refreshToken);
        await this.store.save({
          ...session,
          refreshToken: next.refreshToken,
          accessToken: next.accessToken,
          accessExpiresAt: this.now() + next.expiresIn * 1000,
        });
        this.lastToken = next.accessToken;
        return next.accessToken;
      } catch (err) {
        if (err instanceof AppError && (err.code === 'INVALID_TOKEN' || err.code === 'UNAUTHENTICATED')) {
          await this.store.clear();
          return null;
        }
        throw err;
      }
    });
  }
}
