/**
 * Uploads many files efficiently: asks the server once per 1,000 files which contents it
 * already has (those are committed with no bytes), sends small new files in their
 * creation request, streams big ones resumably, and waits for the server to commit
 * them all at the end rather than holding a transfer slot per file.
 */
import type { ApiClient } from '../contract/client.js';
import type { KnownResponse } from '../contract/schemas/uploads.js';
import { sha256File } from '../core/domain/hash.js';
import { runPool } from './pool.js';
import type { Progress } from './progress.js';
import { waitForUpload } from '../contract/tus-client.js';
import { SMALL_FILE, uploadFile, type UploadOutcome } from './upload-file.js';

export interface BatchItem {
  local: string;
  remote: string;
  size: number;
  /** Known already (e.g. `aio sync` hashed it to compare). */
  sha256?: string;
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

export async function uploadBatch(items: readonly BatchItem[], options: BatchOptions): Promise<BatchResult> {
  const small = items.filter((i) => i.size <= SMALL_FILE);
  const hashed = await runPool(
    small,
    8,
    async (item) => item.sha256 ?? (await sha256File(item.local)).sha256,
  );
  const hashOf = new Map<BatchItem, string>();
  hashed.forEach((r, i) => {
    if (r.ok) hashOf.set(small[i] as BatchItem, r.value);
  });
  const known = hashOf.size
    ? await knownContents(options.client, [...new Set(hashOf.values())])
    : new Set<string>();

  const sent = await runPool(items, options.transfers, async (item) => {
    const bar = options.progress.bar(item.remote, item.size);
    try {
      const hash = hashOf.get(item);
      return await uploadFile({
        client: options.client,
        configDir: options.configDir,
        account: options.account,
        local: item.local,
        remote: item.remote,
        wait: false,
        priority: options.priority,
        serverHas: hash === undefined ? undefined : known.has(hash),
        sha256: item.sha256,
        onProgress: (n) => bar.update(n),
      });
    } finally {
      bar.stop();
    }
  });

  options.progress.stop();
  const pending = sent.filter((r) => r.ok && r.value.status !== 'ready').length;
  const stopSpinner =
    options.wait && pending > 0
      ? options.progress.spin(`Waiting for the server to commit ${pending} file(s)…`)
      : () => {};
  const results = await runPool(sent, 16, async (r) => {
    if (!r.ok) throw r.error;
    let outcome = r.value;
    if (options.wait && outcome.status !== 'ready') {
      const view = await waitForUpload(options.client, outcome.uploadId);
      outcome = { ...outcome, status: 'ready', fileId: view.fileId };
    }
    options.onUploaded?.(outcome);
    return outcome;
  });
  stopSpinner();
  return results;
}
