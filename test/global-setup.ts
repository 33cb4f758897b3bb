/**
 * Builds `dist/` once before the suites that start the real binaries (bin/aio-server,
 * bin/aio-worker, bin/aio) as child processes.
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (process.env.AIO_TEST_SKIP_BUILD === '1') return;
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
