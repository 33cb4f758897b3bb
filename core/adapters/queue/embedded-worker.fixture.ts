/**
 * A separate worker process for `embedded.test.ts`: consumes `file.upload` from the
 * SQLite file given as argv[2], printing `ready` once consuming and then each handled
 * job's idempotency key on its own line. SIGTERM stops it gracefully.
 */
import { openSqlite } from '../../sqlite.js';
import { EmbeddedJobQueue } from './embedded.js';

const file = process.argv[2];
if (!file) throw new Error('usage: embedded-worker.fixture.ts <sqlite file>');

const db = openSqlite(file);
const queue = new EmbeddedJobQueue(db, { pollIntervalMs: 10, visibilityTimeoutMs: 5000 });
await queue.consume(
  'file.upload',
  async (job) => {
    process.stdout.write(`${job.idempotencyKey}\n`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  },
  { concurrency: 2 },
);
process.stdout.write('ready\n');

process.once('SIGTERM', () => {
  void queue.close().then(() => {
    db.close();
    process.exit(0);
  });
});
