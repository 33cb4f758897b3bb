/**
 * Daemon workloads (W4 change-to-server latency, daemon initial sync, idle RSS/CPU over
 * 100,000 watched files). They need `aio watch` and `aio daemon` in the CLI; until the
 * daemon ships they are reported as not measured instead of failing the run.
 */
import path from 'node:path';
import { runTimed } from './proc.js';
import type { Results } from './results.js';
import { ROOT } from './tools.js';

/** True when `bin/aio --help` lists both `watch` and `daemon`. */
export async function daemonAvailable(): Promise<boolean> {
  const r = await runTimed('aio --help', process.execPath, [path.join(ROOT, 'bin', 'aio'), '--help'], {
    allowFail: true,
  });
  const commands = r.stdout + r.stderr;
  return /^\s+watch\b/m.test(commands) && /^\s+daemon\b/m.test(commands);
}

export interface DaemonOptions {
  available: boolean;
  w4: boolean;
  mem: boolean;
  trials: number;
  quick: boolean;
}

export async function runDaemonWorkloads(opts: DaemonOptions, results: Results): Promise<void> {
  if (!opts.available) {
    const what = [
      opts.w4 ? 'W4 (change-to-server latency p50/p95 vs Syncthing fsWatcherDelayS=1 and 10)' : null,
      opts.mem
        ? 'daemon memory (idle RSS and CPU over 60 s watching 100,000 files; daemon peak RSS in W1/W2)'
        : null,
      'daemon initial sync in W2 and resync in W3',
    ].filter(Boolean);
    results.gap(
      `${what.join('; ')}: \`bin/aio --help\` has no \`watch\`/\`daemon\` commands yet (cli/commands/daemon.ts and watch.ts exist but are not wired into cli/program.ts).`,
    );
    return;
  }
  results.gap(
    'the daemon commands exist now, but the daemon workloads are not written yet (scripts/bench/daemon.ts).',
  );
}
