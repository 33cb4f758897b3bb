/**
 * JobStatusStore: what a person polling `GET /api/v1/jobs/:id` sees of a background job.
 *
 * The status is kept in the Cache (in-process memory embedded, Redis in production)
 * under `job:<id>` as JSON, for 24 hours after its last change; the job itself lives in
 * the durable JobQueue, so losing a status (a Redis restart) loses only what the poller
 * sees, never the work: the handler writes the status again when it runs.
 *
 * Ownership: `getForOwner` answers `null` for another user's job exactly as for an
 * unknown id, so a job id reveals nothing to someone else.
 */
import type { JobState, JobType } from '../contract/schemas/jobs.js';
import type { Clock } from './domain/clock.js';
import type { Cache } from './ports/cache.js';

export const JOB_STATUS_TTL_MS = 24 * 60 * 60 * 1000;

export interface JobStatus {
  id: string;
  ownerId: string;
  type: JobType;
  status: JobState;
  result?: Record<string, unknown>;
  error?: string;
  /** ISO-8601. */
  createdAt: string;
  updatedAt: string;
}

/** Which job a status belongs to; carried in the job's payload so the worker can rebuild a lost status. */
export interface JobRef {
  id: string;
  ownerId: string;
  type: JobType;
}

export interface JobStatusChange {
  status: JobState;
  result?: Record<string, unknown>;
  error?: string;
}

export function jobStatusKey(id: string): string {
  return `job:${id}`;
}

export class JobStatusStore {
  constructor(
    private readonly cache: Cache,
    private readonly clock: Clock,
    private readonly ttlMs: number = JOB_STATUS_TTL_MS,
  ) {}

  /** The status, or `null` when unknown or expired. A value that is not a status counts as unknown. */
  async get(id: string): Promise<JobStatus | null> {
    const raw = await this.cache.get(jobStatusKey(id));
    if (raw === null) return null;
    try {
      const parsed = JSON.parse(raw) as Partial<JobStatus>;
      if (
        typeof parsed.id !== 'string' ||
        typeof parsed.ownerId !== 'string' ||
        typeof parsed.status !== 'string'
      ) {
        return null;
      }
      return parsed as JobStatus;
    } catch {
      return null;
    }
  }

  /** The status when it belongs to `ownerId`; `null` for an unknown id and for anyone else's job alike. */
  async getForOwner(ownerId: string, id: string): Promise<JobStatus | null> {
    const status = await this.get(id);
    return status !== null && status.ownerId === ownerId ? status : null;
  }

  /** Writes a fresh `queued` status. */
  async create(ref: JobRef): Promise<JobStatus> {
    return this.set(ref, { status: 'queued' });
  }

  /**
   * Moves the job to `change.status`, keeping `createdAt` (a lost status starts anew).
   * `result` and `error` are replaced by the change's, not merged: a retry clears an old error.
   */
  async set(ref: JobRef, change: JobStatusChange): Promise<JobStatus> {
    const now = this.clock.now().toISOString();
    const previous = await this.get(ref.id);
    const next: JobStatus = {
      id: ref.id,
      ownerId: ref.ownerId,
      type: ref.type,
      status: change.status,
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
    };
    if (change.result !== undefined) next.result = change.result;
    if (change.error !== undefined) next.error = change.error;
    await this.cache.set(jobStatusKey(ref.id), JSON.stringify(next), this.ttlMs);
    return next;
  }
}
