/**
 * Builds `dist/` once before the suites that start the real binaries (bin/aio-server,
 * bin/aio-worker, bin/aio) as child processes: `npm run build` (tsc, then the bundle of
 * `aio`, scripts/build-cli.mjs).
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (process.env.AIO_TEST_SKIP_BUILD === '1') return;
  execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
}
