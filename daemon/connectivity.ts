/**
 * Shared reachability of the server. When a request fails because the server cannot be
 * reached, every operation and the change feed wait until `nextTryAt`, which backs off
 * exponentially up to a cap: no hot loop while offline, quick recovery when it returns.
 */
export class Connectivity {
  private failures = 0;
  private until = 0;

  constructor(
    private readonly maxMs: number,
    private readonly baseMs = 250,
  ) {}

  get offline(): boolean {
    return this.failures > 0;
  }

  /** When the next request may be tried (ms since epoch; in the past when online). */
  get nextTryAt(): number {
    return this.until;
  }

  failed(): void {
    this.failures++;
    this.until = Date.now() + Math.min(this.baseMs * 2 ** Math.min(this.failures, 20), this.maxMs);
  }

  succeeded(): void {
    this.failures = 0;
    this.until = 0;
  }
}
