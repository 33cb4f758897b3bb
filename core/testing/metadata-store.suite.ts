/**
 * The MetadataStore conformance suite: every adapter runs it with a factory that makes a
 * fresh, empty store per test (and a cleanup that removes it). See `metadata-*.suite.ts`
 * for the tests of each area.
 */
import { afterEach, beforeEach, describe } from 'vitest';
import type { MetadataStore } from '../ports/metadata-store.js';
import { accountTests } from './metadata-accounts.suite.js';
import { feedTests } from './metadata-feed.suite.js';
import type { StoreHandle, SuiteContext } from './metadata-fixtures.js';
import { sharingTests } from './metadata-sharing.suite.js';
import { transferTests } from './metadata-transfers.suite.js';
import { treeTests } from './metadata-tree.suite.js';

export function metadataStoreSuite(
  name: string,
  factory: () => Promise<{ store: MetadataStore; cleanup: () => Promise<void> }>,
): void {
  describe(`MetadataStore conformance: ${name}`, () => {
    const ctx = {} as SuiteContext;
    let handle: StoreHandle | undefined;

    beforeEach(async () => {
      handle = await factory();
      ctx.store = handle.store;
    });

    afterEach(async () => {
      await handle?.cleanup();
      handle = undefined;
    });

    accountTests(ctx);
    treeTests(ctx);
    feedTests(ctx);
    transferTests(ctx);
    sharingTests(ctx);
  });
}
