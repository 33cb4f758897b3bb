import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ThreadHasher, sharedBuffer } from './hash-thread.js';

function update(hasher: ThreadHasher, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => hasher.update(bytes, (err) => (err ? reject(err) : resolve())));
}

function shared(bytes: Buffer): Buffer {
  const out = sharedBuffer(bytes.length);
  out.fill(bytes);
  return out;
}

describe('ThreadHasher', () => {
  it('hashes what it was handed, and starts over on the same thread after restart', async () => {
    const hasher = new ThreadHasher();
    try {
      const [a, b, c] = [randomBytes(100_000), randomBytes(3), randomBytes(70_000)];
      await update(hasher, shared(a));
      await update(hasher, shared(b));
      expect(await hasher.digest()).toBe(createHash('sha256').update(a).update(b).digest('hex'));

      // After a digest.
      expect(hasher.restart()).toBe(true);
      await update(hasher, shared(c));
      expect(await hasher.digest()).toBe(createHash('sha256').update(c).digest('hex'));

      // After a stream abandoned half-way (no digest): nothing of it counts.
      expect(hasher.restart()).toBe(true);
      await update(hasher, shared(a));
      expect(hasher.restart()).toBe(true);
      await update(hasher, shared(b));
      expect(await hasher.digest()).toBe(createHash('sha256').update(b).digest('hex'));
    } finally {
      await hasher.close();
    }
  });

  it('refuses to restart while it still works on a chunk, and once closed', async () => {
    const hasher = new ThreadHasher();
    const pending = update(hasher, shared(randomBytes(1_000_000)));
    expect(hasher.restart()).toBe(false);
    await pending;
    await hasher.close();
    expect(hasher.restart()).toBe(false);
  });
});
