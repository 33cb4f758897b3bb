/**
 * Validates docker-compose.yml with the compose tool itself (`docker-compose` or the
 * `docker compose` plugin). No Docker engine is needed for `config`. Under CI=true the
 * tool must exist, unless .ci/run could not install it and said why in
 * AIO_COMPOSE_UNAVAILABLE; elsewhere a missing tool skips with a message.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.js';

function run(command: string[], args: string[]): { status: number | null; stdout: string; stderr: string } {
  const [bin, ...pre] = command as [string, ...string[]];
  const result = spawnSync(bin, [...pre, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    // Only what the file itself says: no values from the developer's shell.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
  });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

function findCompose(): string[] | null {
  for (const candidate of [['docker-compose'], ['docker', 'compose']]) {
    if (run(candidate, ['version']).status === 0) return candidate;
  }
  return null;
}

describe('docker-compose.yml', () => {
  it('is valid and defines the services, volumes and health-gated start-up', (ctx) => {
    const compose = findCompose();
    if (!compose) {
      const reason = process.env.AIO_COMPOSE_UNAVAILABLE;
      if (process.env.CI === 'true' && !reason) {
        throw new Error(
          'docker-compose (or `docker compose`) must be installed when CI=true; .ci/run installs it',
        );
      }
      const note = `docker-compose is not installed${reason ? ` (${reason})` : ''}: not validating docker-compose.yml`;
      console.warn(note);
      ctx.skip(note);
    }
    const command = compose as string[];

    const check = run(command, ['config', '-q']);
    expect(check.status, check.stderr).toBe(0);

    const services = run(command, ['config', '--services']).stdout.split('\n').filter(Boolean).sort();
    expect(services).toEqual(['api', 'mongodb', 'rabbitmq', 'redis', 'worker']);
    const volumes = run(command, ['config', '--volumes']).stdout.split('\n').filter(Boolean);
    expect(volumes).toEqual(expect.arrayContaining(['data', 'storage']));

    const full = run(command, ['config']).stdout;
    expect(full).toMatch(/--replSet/);
    expect(full).toContain('condition: service_healthy');
    expect(full).toMatch(/AIO_WORKER: 'off'|AIO_WORKER: "off"|AIO_WORKER: off/);
    expect(full).toContain('aio-worker');
    // Both programs mount the shared blob storage at the same path.
    expect(full.match(/storage:\/var\/lib\/aio\/storage/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(full.match(/healthcheck:/g)?.length).toBe(5);
  });
});
