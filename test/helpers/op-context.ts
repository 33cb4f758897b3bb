/**
 * A watched folder for the daemon's operations in tests: an empty local root, a journal
 * with the folder in it, and the operation context against `client`'s server. Its files
 * go away through `cleanups`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { ApiClient } from '../../contract/client.js';
import { Journal } from '../../daemon/journal.js';
import type { OperationContext } from '../../daemon/operations.js';
import { RemoteFolder } from '../../daemon/remote.js';

export function opFolder(
  remoteRoot: string,
  client: ApiClient,
  cleanups: Array<() => void>,
): { root: string; ctx: OperationContext } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aio-op-'));
  const root = path.join(dir, 'local');
  fs.mkdirSync(root);
  const journal = Journal.open(path.join(dir, 'journal.db'));
  cleanups.push(() => {
    journal.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const folderId = journal.folder(root, remoteRoot, 'test').id;
  const ctx: OperationContext = {
    root,
    folderId,
    journal,
    remote: new RemoteFolder(client, remoteRoot),
    host: 'test-host',
    trashDir: path.join(dir, 'trash'),
    settleMs: 50,
    log: pino({ level: 'silent' }),
  };
  return { root, ctx };
}
