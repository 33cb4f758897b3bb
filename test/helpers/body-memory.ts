/**
 * A `BodyMemory` that records what it is told and when it collects, for tests that
 * check the server tells it every byte of request and response bodies.
 */
import { BodyMemory } from '../../server/body-memory.js';

export class CountingBodyMemory extends BodyMemory {
  /** Request body bytes told so far (`received`). */
  receivedBytes = 0;
  /** Response body bytes told so far (`sent`). */
  sentBytes = 0;
  /** `receivedBytes` at each young-generation collection. */
  readonly collections: number[] = [];
  /** `sentBytes` at each full collection. */
  readonly compactions: number[] = [];

  /**
   * @param collectEvery request body bytes between two young collections.
   * @param compactEvery response body bytes between two full collections.
   */
  constructor(collectEvery: number, compactEvery = Number.MAX_SAFE_INTEGER) {
    super(
      () => this.collections.push(this.receivedBytes),
      collectEvery,
      () => this.compactions.push(this.sentBytes),
      compactEvery,
    );
  }

  override received(bytes: number): void {
    this.receivedBytes += bytes;
    super.received(bytes);
  }

  override sent(bytes: number): void {
    this.sentBytes += bytes;
    super.sent(bytes);
  }
}
