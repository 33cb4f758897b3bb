import { describe, expect, it } from 'vitest';
import { openSqlite } from '../../sqlite.js';
import { EmbeddedJobStore } from './embedded-store.js';

describe('EmbeddedJobStore.claim', () => {
  it('takes the best deliverable job across waiting jobs and expired leases: priority, then age, then order', () => {
    const db = openSqlite(':memory:');
    try {
      const store = new EmbeddedJobStore(db);
      const t = 1_000_000;
      const publish = (key: string, priority: number, at: number): void => {
        store.insert({ queue: 'file.upload', payload: { key }, idempotencyKey: key }, priority, at);
      };
      const next = (now: number, lease = now + 1_000): string | null => {
        const claimed = store.claim('file.upload', now, lease);
        if (!claimed) return null;
        // 'high-old' is finished the second time it is delivered.
        if (claimed.job.idempotencyKey === 'high-old' && claimed.job.attempt === 2)
          expect(store.complete(claimed.job.id, claimed.token)).toBe(true);
        return claimed.job.idempotencyKey;
      };

      publish('high-old', 9, t);
      publish('low-old', 1, t);
      publish('mid', 5, t + 10);
      publish('other-queue', 9, t);
      db.prepare("UPDATE jobs SET queue = 'file.download' WHERE idempotency_key = 'other-queue'").run();
      // A retry later than now is not deliverable yet, whatever its priority.
      publish('high-later', 9, t + 50_000);

      expect(next(t + 100, t + 200)).toBe('high-old'); // leased until t + 200
      expect(next(t + 100)).toBe('mid');
      // The lease of 'high-old' expired: it comes back before anything of lower priority.
      expect(next(t + 300)).toBe('high-old');
      expect(next(t + 300)).toBe('low-old');
      expect(next(t + 300)).toBeNull();
      expect(next(t + 60_000)).toBe('high-later');
      // 'mid' (leased until t + 1,100) and 'low-old' expired, 'high-later' did not: mid first.
      expect(next(t + 60_000)).toBe('mid');
      expect(next(t + 60_000)).toBe('low-old');
      expect(next(t + 60_000)).toBeNull();
    } finally {
      db.close();
    }
  });
});
