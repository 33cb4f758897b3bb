import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { connect } from 'amqplib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobQueue } from '../../ports/job-queue.js';
import { QUEUES } from '../../ports/job-queue.js';
import type { JobQueueHarness } from '../../testing/job-queue.suite.js';
import { jobQueueSuite } from '../../testing/job-queue.suite.js';
import type { QueueLogger } from './logger.js';
import { RabbitJobQueue } from './rabbit.js';

const AMQP_URL = process.env.AMQP_URL;

/** Keeps the adapter's (expected) warnings out of the test output but available to assertions. */
function recordingLogger(): QueueLogger & { entries: { level: string; msg: string | undefined }[] } {
  const entries: { level: string; msg: string | undefined }[] = [];
  return {
    entries,
    warn: (_obj, msg) => void entries.push({ level: 'warn', msg }),
    error: (_obj, msg) => void entries.push({ level: 'error', msg }),
  };
}

/** One prefix per harness: every test's queues are its own, and deleted afterwards. */
function rabbitHarness(
  url: string,
): JobQueueHarness & { prefix: string; open(target?: string): Promise<RabbitJobQueue> } {
  const prefix = `aio-test-${randomUUID().slice(0, 8)}.`;
  const instances = new Set<RabbitJobQueue>();
  const declared = new Set<string>();
  return {
    prefix,
    async open(target: string = url) {
      const queue = await RabbitJobQueue.connect(target, { prefix, logger: recordingLogger() });
      instances.add(queue);
      return queue;
    },
    async close(queue: JobQueue) {
      await queue.close();
    },
    async crash(queue: JobQueue) {
      await (queue as RabbitJobQueue).abandon();
    },
    async cleanup() {
      for (const queue of instances) {
        for (const name of queue.declaredQueues) declared.add(name);
        await queue.abandon();
      }
      for (const q of QUEUES) declared.add(`${prefix}${q}`).add(`${prefix}${q}.dead`);
      const admin = await connect(url);
      try {
        const ch = await admin.createChannel();
        for (const name of declared) await ch.deleteQueue(name);
        await ch.close();
      } finally {
        await admin.close();
      }
    },
  };
}

/** A TCP proxy in front of the broker whose connections the test can cut, as a network failure would. */
async function cuttableProxy(url: string): Promise<{ url: string; cut(): void; close(): Promise<void> }> {
  const target = new URL(url);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5672), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(port);
  return {
    url: proxied.toString(),
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('RabbitJobQueue without a broker', () => {
  it('fails with UnavailableError when no broker answers', async () => {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const logger = recordingLogger();
      await expect(
        RabbitJobQueue.connect(`amqp://guest:guest@127.0.0.1:${port}`, { logger }),
      ).rejects.toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
      });
      expect(logger.entries.some((e) => e.msg === 'rabbit: connection attempt failed')).toBe(true);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

if (!AMQP_URL) {
  if (process.env.CI === 'true') {
    describe('RabbitJobQueue', () => {
      it('runs on CI, which must provide AMQP_URL', () => {
        throw new Error('AMQP_URL is not set: CI must run the RabbitMQ job queue suite against a broker.');
      });
    });
  } else {
    console.warn(
      'AMQP_URL is not set: the RabbitJobQueue tests are not run (set AMQP_URL=amqp://… to run them).',
    );
  }
} else {
  const url = AMQP_URL;
  jobQueueSuite('RabbitJobQueue', async () => rabbitHarness(url));

  describe('RabbitJobQueue', () => {
    let harness: ReturnType<typeof rabbitHarness>;

    beforeEach(() => {
      harness = rabbitHarness(url);
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    it('publishes persistent messages whose messageId is the idempotency key, with an x-attempt header', async () => {
      const queue = await harness.open();
      const { id } = await queue.publish({
        queue: 'file.upload',
        payload: { a: 1 },
        idempotencyKey: 'key-1',
        priority: 3,
      });
      const raw = await connect(url);
      try {
        const ch = await raw.createChannel();
        const msg = await ch.get(`${harness.prefix}file.upload`, { noAck: true });
        expect(msg).not.toBe(false);
        if (msg === false) return;
        expect(JSON.parse(msg.content.toString())).toEqual({ a: 1 });
        expect(msg.properties.messageId).toBe('key-1');
        expect(msg.properties.deliveryMode).toBe(2);
        expect(msg.properties.priority).toBe(3);
        expect(msg.properties.headers?.['x-attempt']).toBe(1);
        expect(msg.properties.headers?.['x-job-id']).toBe(id);
        await ch.close();
      } finally {
        await raw.close();
      }
    });

    it('dead-letters a message that is not a JSON object instead of crashing the consumer', async () => {
      const queue = await harness.open();
      await queue.depth('file.upload'); // declares the topology
      const raw = await connect(url);
      try {
        const ch = await raw.createChannel();
        ch.sendToQueue(`${harness.prefix}file.upload`, Buffer.from('not json'), {
          messageId: 'junk',
          persistent: true,
        });
        await ch.close();
      } finally {
        await raw.close();
      }
      const consumer = await queue.consume('file.upload', async () => undefined);
      await waitFor('the dead letter', async () => (await queue.depth('file.upload')).dead === 1);
      await consumer.stop();
      const dead = await queue.listDead('file.upload', 5);
      expect(dead).toHaveLength(1);
      expect(dead[0]?.error).toMatch(/^undecodable message/);
      expect(dead[0]?.job.idempotencyKey).toBe('junk');
      expect(dead[0]?.job.payload).toEqual({});
    });

    it('reconnects after the connection is cut and consumes and publishes again', async () => {
      const proxy = await cuttableProxy(url);
      try {
        const worker = await harness.open(proxy.url);
        const direct = await harness.open();
        const keys = new Set<string>();
        await worker.consume('file.upload', async (job) => void keys.add(job.idempotencyKey));
        await direct.publish({ queue: 'file.upload', payload: { n: 1 }, idempotencyKey: 'before' });
        await waitFor('the first job', () => keys.has('before'));

        proxy.cut();
        await direct.publish({ queue: 'file.upload', payload: { n: 2 }, idempotencyKey: 'after' });
        // At-least-once: the ack of 'before' may have been lost in the cut, so it may come again.
        await waitFor('the job published during the outage', () => keys.has('after'), 15_000);
        await worker.publish({ queue: 'file.upload', payload: { n: 3 }, idempotencyKey: 'own' });
        await waitFor('the reconnected instance’s own job', () => keys.has('own'));
        await worker.close();
        expect(await direct.depth('file.upload')).toMatchObject({ ready: 0, delayed: 0, dead: 0 });
      } finally {
        // Cut first: server.close() waits for open connections.
        proxy.cut();
        await proxy.close();
      }
    });
  });
}
