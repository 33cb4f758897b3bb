/**
 * Uploads many files efficiently: small files go many to a request (`POST /uploads/batch`,
 * committed by the worker in one transaction), each read once and hashed as it is read,
 * with one question per batch for the contents the server already has (those are
 * committed with no bytes); big ones stream resumably; and the server's commits are
 * waited for at the end rather than holding a transfer slot per file.
 */
import { createHash } from 'node:crypto';
import { planBatches, sendBatch, waitForBatch, type UploadBatchFile } from '../contract/batch-client.js';
import type { ApiClient } from '../contract/client.js';
import { AppError, isErrorCode } from '../contract/errors.js';
import type { KnownResponse } from '../contract/schemas/uploads.js';
import { runPool } from '../core/domain/pool.js';
import type { Progress } from './progress.js';
import { waitForUpload } from '../contract/tus-client.js';
import { readSmallFile } from '../contract/small-file.js';
import { SMALL_FILE, uploadFile, type UploadOutcome } from './upload-file.js';

export interface BatchItem {
  local: string;
  remote: string;
  size: number;
  /** Known already (e.g. `aio sync` hashed it to compare). */
  sha256?: string;
  /** A big file without `sha256`: hashed before it is sent (see `UploadFileOptions.hashFirst`). */
  hashFirst?: boolean;
}

export interface BatchOptions {
  client: ApiClient;
  configDir: string | null;
  account: string;
  transfers: number;
  wait: boolean;
  priority?: 'bulk' | 'normal';
  progress: Progress;
  onUploaded?: (outcome: UploadOutcome) => void;
}

export type BatchResult = Array<{ ok: true; value: UploadOutcome } | { ok: false; error: unknown }>;

/** Files per batch request: big enough to amortise a commit, small enough to pipeline. */
const FILES_PER_REQUEST = 500;
const BYTES_PER_REQUEST = 16 * 1024 * 1024;
const BATCHES_IN_FLIGHT = 2;
/** Files of one batch read between two turns of the event loop. */
const READS_PER_TURN = 64;

interface ReadFile {
  item: BatchItem;
  at: number;
  bytes: Buffer;
  sha256: string;
  mtimeMs: number;
}

async function knownContents(client: ApiClient, hashes: string[]): Promise<Set<string>> {
  const known = new Set<string>();
  for (let i = 0; i < hashes.length; i += 1000) {
    const res = await client.post<KnownResponse>('/api/v1/uploads/known', {
      sha256: hashes.slice(i, i + 1000),
    });
    for (const h of res.known) known.add(h);
  }
  return known;
}

type Outcome = { ok: true; value: UploadOutcome } | { ok: false; error: unknown };

export async function uploadBatch(items: readonly BatchItem[], options: BatchOptions): Promise<BatchResult> {
  // Small files travel in batches: each is read once, hashed as it is read, and the server
  // is asked once per batch which contents it has (those are committed without their
  // bytes). Big files go one by one, resumably (the tus client hashes and deduplicates).
  const index = new Map(items.map((item, i) => [item, i]));
  const batched = items.filter((item) => item.size <= SMALL_FILE);
  const single = items.filter((item) => item.size > SMALL_FILE);
  const results: Outcome[] = new Array(items.length);

  const batchJobs = planBatches(batched, { maxFiles: FILES_PER_REQUEST, maxBytes: BYTES_PER_REQUEST });
  const pendingBatches: Array<{ batchId: string; members: Array<{ item: BatchItem; sent: UploadOutcome }> }> =
    [];
  // Batches and single files run side by side; a few batches in flight keep the server's
  // worker busy without making every batch wait behind all the others.
  const sendBatches = async (): Promise<void> => {
    await runPool(batchJobs, BATCHES_IN_FLIGHT, async (members) => {
      const sent = await sendOneBatch(members, options);
      members.forEach((item, i) => {
        const outcome = sent.outcomes[i];
        if (outcome !== undefined) results[index.get(item) as number] = outcome;
      });
      if (sent.batchId !== null && sent.waiting.length > 0)
        pendingBatches.push({ batchId: sent.batchId, members: sent.waiting });
      // Contents the server turned out to have: committed without their bytes.
      await runPool(sent.known, options.transfers, async ({ item, sha256 }) => {
        results[index.get(item) as number] = await uploadOne({ ...item, sha256 }, true, options);
      });
    });
  };
  const sendSingles = async (): Promise<void> => {
    await runPool(single, options.transfers, async (item) => {
      results[index.get(item) as number] = await uploadOne(item, undefined, options);
    });
  };
  await Promise.all([sendBatches(), sendSingles()]);

  options.progress.stop();
  const pending = results.filter((r) => r.ok && r.value.status !== 'ready').length;
  const stopSpinner =
    options.wait && pending > 0
      ? options.progress.spin(`Waiting for the server to commit ${pending} file(s)…`)
      : () => {};
  try {
    if (options.wait) {
      await runPool(pendingBatches, 4, async ({ batchId, members }) => {
        const final = await waitForBatch(options.client, batchId);
        const byUpload = new Map(final.files.map((f) => [f.uploadId, f]));
        for (const { item, sent } of members) {
          const view = byUpload.get(sent.uploadId);
          results[index.get(item) as number] = view
            ? outcomeOf(view, sent)
            : { ok: false, error: new AppError('INTERNAL', 'The server lost track of the file.') };
        }
      });
    }
    const waited = await runPool(results, 16, async (r) => {
      if (!r.ok) throw r.error;
      let outcome = r.value;
      if (options.wait && outcome.status !== 'ready') {
        const view = await waitForUpload(options.client, outcome.uploadId);
        outcome = { ...outcome, status: 'ready', fileId: view.fileId };
      }
      options.onUploaded?.(outcome);
      return outcome;
    });
    return waited;
  } finally {
    stopSpinner();
  }
}

/** One file over tus; `serverHas`: the server is known to have its content already. */
async function uploadOne(
  item: BatchItem,
  serverHas: boolean | undefined,
  options: BatchOptions,
): Promise<Outcome> {
  const bar = options.progress.bar(item.remote, item.size);
  try {
    const value = await uploadFile({
      client: options.client,
      configDir: options.configDir,
      account: options.account,
      local: item.local,
      remote: item.remote,
      wait: false,
      priority: options.priority,
      serverHas,
      sha256: item.sha256,
      hashFirst: item.hashFirst,
      onProgress: (n) => bar.update(n),
    });
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error };
  } finally {
    bar.stop();
  }
}

/**
 * Reads the files (what is hashed is exactly what is sent), asks whether the server has
 * their contents (those go back as `known`, with no outcome, to be
 * committed without their bytes), sends the rest in one request and returns each one's
 * outcome; those the server accepted are `pending` until the batch is committed
 * (`waiting`).
 */
async function sendOneBatch(
  members: readonly BatchItem[],
  options: BatchOptions,
): Promise<{
  batchId: string | null;
  outcomes: Array<Outcome | undefined>;
  waiting: Array<{ item: BatchItem; sent: UploadOutcome }>;
  known: Array<{ item: BatchItem; sha256: string }>;
}> {
  const outcomes: Outcome[] = new Array(members.length);
  const read: Array<{ ok: true; value: ReadFile } | { ok: false; error: unknown }> = [];
  for (const [at, item] of members.entries()) {
    try {
      const { bytes, mtimeMs } = readSmallFile(item.local, SMALL_FILE);
      read.push({
        ok: true,
        value: { item, at, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), mtimeMs },
      });
    } catch (error) {
      read.push({ ok: false, error });
    }
    // Synchronous reads: let the other batch's request move between a few of them.
    if (at % READS_PER_TURN === READS_PER_TURN - 1)
      await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const readable = read.flatMap((r, at) => {
    if (r.ok) return [r.value];
    outcomes[at] = { ok: false, error: r.error };
    return [];
  });
  const toAsk = [...new Set(readable.map((f) => f.sha256))];
  let serverHas: ReadonlySet<string> = new Set<string>();
  if (toAsk.length > 0) {
    try {
      serverHas = await knownContents(options.client, toAsk);
    } catch {
      // Only an optimisation: the batch stores a content it has once either way.
    }
  }
  const known: Array<{ item: BatchItem; sha256: string }> = [];
  const files = readable.filter((f) => {
    if (!serverHas.has(f.sha256)) return true;
    known.push({ item: f.item, sha256: f.sha256 });
    return false;
  });
  if (files.length === 0) return { batchId: null, outcomes, waiting: [], known };
  const bars = files.map((f) => options.progress.bar(f.item.remote, f.bytes.byteLength));
  let answer;
  try {
    answer = await sendBatch(
      options.client,
      files.map((f) => ({ path: f.item.remote, bytes: f.bytes, sha256: f.sha256, mtimeMs: f.mtimeMs })),
      { priority: options.priority },
    );
  } catch (error) {
    for (const f of files) outcomes[f.at] = { ok: false, error };
    return { batchId: null, outcomes, waiting: [], known };
  } finally {
    files.forEach((f, i) => {
      bars[i]?.update(f.bytes.byteLength);
      bars[i]?.stop();
    });
  }
  const waiting: Array<{ item: BatchItem; sent: UploadOutcome }> = [];
  answer.files.forEach((view, i) => {
    const f = files[i];
    if (!f) return;
    const sent: UploadOutcome = {
      local: f.item.local,
      remote: f.item.remote,
      uploadId: view.uploadId ?? '',
      size: f.bytes.byteLength,
      sha256: f.sha256,
      how: 'uploaded',
      status: 'pending',
      fileId: null,
      bytesSent: f.bytes.byteLength,
    };
    outcomes[f.at] = outcomeOf(view, sent);
    if (view.status === 'processing' || view.status === 'receiving') waiting.push({ item: f.item, sent });
  });
  return { batchId: answer.batchId, outcomes, waiting, known };
}

/** A batch file's state as an upload outcome: committed, on its way, or the error it failed with. */
function outcomeOf(view: UploadBatchFile, sent: UploadOutcome): Outcome {
  if (view.status === 'ready') return { ok: true, value: { ...sent, status: 'ready', fileId: view.fileId } };
  if (view.status === 'processing' || view.status === 'receiving') {
    // Marked ready once the batch is waited for; `--no-wait` reports it pending.
    return { ok: true, value: { ...sent, status: 'pending' } };
  }
  const code = view.error ?? 'INTERNAL';
  const message = view.message ?? `The server could not store ${sent.remote} (${code}).`;
  return { ok: false, error: new AppError(isErrorCode(code) ? code : 'INTERNAL', message) };
}
