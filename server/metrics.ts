/**
 * Prometheus metrics, one registry per app instance (no global default registry, so
 * tests can build many apps in one process).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { QUEUES, type JobQueue } from '../core/ports/job-queue.js';

export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: 'aio_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: 'aio_job_duration_seconds',
    help: 'Job handler duration by queue and outcome',
    labelNames: ['queue', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });
  readonly jobFailures = new Counter({
    name: 'aio_job_failures_total',
    help: 'Job handler failures by queue',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });

  constructor(options: { queue?: JobQueue; defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'aio_' });
    const queue = options.queue;
    if (queue) {
      new Gauge({
        name: 'aio_queue_depth',
        help: 'Jobs per queue and state',
        labelNames: ['queue', 'state'] as const,
        registers: [this.registry],
        async collect() {
          for (const name of QUEUES) {
            try {
              const depth = await queue.depth(name);
              for (const [state, value] of Object.entries(depth)) this.set({ queue: name, state }, value);
            } catch {
              // A queue backend that is down leaves the last values; readiness reports the outage.
            }
          }
        },
      });
    }
  }
}
