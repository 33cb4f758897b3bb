/**
 * `npm run bench [-- --only w1,w2,w3,w4,load,mem] [--runs N] [--quick] [--no-build] [--out FILE]`
 *
 * Benchmarks aio against rclone (WebDAV), Syncthing and the raw loopback limit (curl to a
 * minimal Node sink), all on 127.0.0.1, interleaving the tools run by run and taking
 * medians. Prints one table and writes it to docs/benchmarks.md. Installs rclone,
 * syncthing and hyperfine with apt-get when they are missing. Every process started is
 * stopped by pid, also on failure and on Ctrl-C.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runDaemonWorkloads, daemonAvailable } from './daemon.js';
import { runLoad } from './load.js';
import { installSignalHandlers, runTimed, serviceLogs, stopAll } from './proc.js';
import { Results, machine, writeReport } from './results.js';
import { ROOT } from './tools.js';
import { runW1 } from './w1.js';
import { runW2 } from './w2.js';

const WORKLOADS = ['w1', 'w2', 'w3', 'w4', 'load', 'mem'] as const;
type Workload = (typeof WORKLOADS)[number];

function usage(): never {
  console.log(`usage: npm run bench -- [--only ${WORKLOADS.join(',')}] [--runs N] [--quick] [--no-build] [--out FILE]

  --only      comma-separated workloads (default: all)
  --runs N    runs per workload (default 5 for w1, 3 for the others; 1 with --quick)
  --quick     smoke run: small sizes, 1 run, short load tests
  --no-build  do not run \`npm run build\` first (dist/ must be current)
  --out FILE  report file (default docs/benchmarks.md)`);
  process.exit(0);
}

function have(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

function ensureTools(): void {
  const missing = ['rclone', 'syncthing', 'hyperfine', 'curl'].filter((b) => !have(b));
  if (!missing.length) return;
  console.log(`installing ${missing.join(', ')} with apt-get…`);
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').split('\n')[0]?.trim() ?? '?';
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) usage();
  const only = new Set<Workload>();
  for (const w of (values.only ?? WORKLOADS.join(',')).split(',').map((s) => s.trim().toLowerCase())) {
    if (!(WORKLOADS as readonly string[]).includes(w))
      throw new Error(`unknown workload "${w}" (${WORKLOADS.join(', ')})`);
    only.add(w as Workload);
  }
  const quick = values.quick ?? false;
  const runsFlag = values.runs === undefined ? null : Number(values.runs);
  if (runsFlag !== null && (!Number.isInteger(runsFlag) || runsFlag < 1))
    throw new Error('--runs takes a whole number ≥ 1');
  const runs = (dflt: number) => runsFlag ?? (quick ? 1 : dflt);
  const out = path.resolve(ROOT, values.out ?? 'docs/benchmarks.md');

  installSignalHandlers();
  const startedAt = new Date();
  const results = new Results();
  console.log(`aio bench — ${machine()}`);
  ensureTools();
  if (!values['no-build']) {
    console.log('building dist/…');
    const build = await runTimed('npm run build', 'npm', ['run', 'build', '--silent'], {
      cwd: ROOT,
      allowFail: true,
    });
    if (build.code !== 0) {
      // tsc still emits; other engineers' half-finished files should not block a bench run.
      const errors = (build.stdout + build.stderr).split('\n').filter((l) => /error TS/.test(l));
      console.error(build.stdout + build.stderr);
      results.note(
        `\`npm run build\` reported ${errors.length} type error(s) (${[...new Set(errors.map((l) => l.split('(')[0]))].join(', ')}); the JavaScript tsc emitted anyway was benchmarked.`,
      );
    }
  }
  if (quick) results.note('--quick: smoke-run sizes, not comparable with full runs.');

  // One failing workload is reported and does not lose the others.
  const guarded = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      console.error(`\n${name} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      console.error(`output of the last services started:\n${serviceLogs()}`);
      results.gap(`${name} failed: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
      failures++;
    } finally {
      await stopAll();
    }
  };
  let failures = 0;
  if (only.has('load'))
    await guarded('load', () =>
      runLoad({ durationS: quick ? 3 : 10, warmupS: quick ? 1 : 5, runs: runs(3) }, results),
    );
  if (only.has('w1'))
    await guarded('W1', () => runW1({ runs: runs(5), bytes: quick ? 64 * 2 ** 20 : 2 ** 30 }, results));
  if (only.has('w2') || only.has('w3')) {
    await guarded('W2/W3', () =>
      runW2(
        {
          runs: runs(3),
          folders: quick ? 10 : 50,
          perFolder: quick ? 50 : 100,
          size: 4096,
          w3: only.has('w3'),
          changes: quick ? 10 : 50,
        },
        results,
      ),
    );
  }
  if (only.has('w4') || only.has('mem')) {
    await guarded('daemon', async () =>
      runDaemonWorkloads(
        {
          available: await daemonAvailable(),
          w4: only.has('w4'),
          mem: only.has('mem'),
          runs: runs(3),
          trials: quick ? 5 : 20,
          quick,
        },
        results,
      ),
    );
  }

  const versions = {
    node: process.version,
    rclone: version('rclone', ['version']).replace(/^rclone\s+/, ''),
    syncthing: version('syncthing', ['--version']).split(' ').slice(1, 2).join(''),
    curl: version('curl', ['--version']).split(' ')[1] ?? '?',
    hyperfine: version('hyperfine', ['--version']).replace(/^hyperfine\s+/, ''),
  };
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  await writeReport(out, results, {
    command,
    versions,
    startedAt,
    durationMs: Date.now() - startedAt.getTime(),
  });
  console.log(`\n${results.table()}\n`);
  for (const n of results.notes) console.log(`- ${n}`);
  for (const g of results.gaps) console.log(`- NOT MEASURED: ${g}`);
  console.log(`\nwritten to ${path.relative(ROOT, out)}`);
  if (failures) process.exitCode = 1;
}

main().catch(async (err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  await stopAll();
  process.exit(1);
});
