/**
 * Helpers shared by the MetadataStore conformance suite: the per-test store context,
 * users, file commits and error assertions.
 */
import { createHash, randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { AppError } from '../../contract/errors.js';
import type { CommitFileInput, CommitFileResult, MetadataStore, User } from '../ports/metadata-store.js';

export interface StoreHandle {
  store: MetadataStore;
  cleanup: () => Promise<void>;
}

export type StoreFactory = () => Promise<StoreHandle>;

/** Filled by the suite's beforeEach: one fresh store per test. */
export interface SuiteContext {
  store: MetadataStore;
}

export function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function makeUser(store: MetadataStore, label = 'user'): Promise<User> {
  return store.createUser({
    email: `${label}-${randomUUID()}@example.test`,
    name: label,
    passwordHash: '$2b$04$fixturefixturefixturefixtureOq',
    storageQuota: 1024 ** 3,
  });
}

/** Commits `content` as a file; the sha256 and size come from the content. */
export async function commit(
  store: MetadataStore,
  ownerId: string,
  parentId: string | null,
  name: string,
  content: string,
  extra: Partial<CommitFileInput> = {},
): Promise<CommitFileResult> {
  return store.commitFile({
    ownerId,
    parentId,
    name,
    sha256: sha(content),
    size: Buffer.byteLength(content),
    mtime: 1_700_000_000_000,
    mediaType: 'text/plain',
    sourceId: randomUUID(),
    ...extra,
  });
}

/** Awaits `promise`, expecting a rejection with an `AppError` of `code`; returns it. */
export async function expectCode(promise: Promise<unknown>, code: string): Promise<AppError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a rejection with ${code}`).toBeInstanceOf(AppError);
  expect((caught as AppError).code).toBe(code);
  return caught as AppError;
}

/** Yields to the event loop so concurrently started calls interleave. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
