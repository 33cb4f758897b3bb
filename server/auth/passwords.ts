/**
 * Password hashing with bcrypt at the configured cost. `verifyOrDummy` always runs
 * one bcrypt comparison at that cost, also when there is no user (against a
 * precomputed dummy hash), so an unknown email and a wrong password take about the
 * same time.
 */
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';

export class PasswordHasher {
  private readonly cost: number;
  private dummy: Promise<string> | undefined;

  constructor(cost: number) {
    this.cost = cost;
  }

  /** Starts computing the dummy hash now, so the first unknown-email login is not faster or slower. */
  warmUp(): void {
    void this.dummyHash().catch(() => undefined);
  }

  hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.cost);
  }

  /**
   * True when `password` matches `hash`. With `hash` null (unknown user) it compares
   * against the dummy hash and returns false.
   */
  async verifyOrDummy(password: string, hash: string | null): Promise<boolean> {
    if (hash === null) {
      await bcrypt.compare(password, await this.dummyHash());
      return false;
    }
    try {
      return await bcrypt.compare(password, hash);
    } catch {
      // A malformed stored hash can never match.
      return false;
    }
  }

  private dummyHash(): Promise<string> {
    this.dummy ??= bcrypt.hash(randomBytes(24).toString('base64'), this.cost);
    return this.dummy;
  }
}
