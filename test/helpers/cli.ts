/**
 * Runs the real `bin/aio` (built into dist/) with execa, with no TTY and a scrubbed
 * environment: only what the test passes (server, config dir, token) reaches it.
 */
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ROOT } from './processes.js';

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const SCRUBBED = /^(AIO_|MONGODB_URI$|AMQP_URL$|REDIS_URL$)/;

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !SCRUBBED.test(k)) env[k] = v;
  return env;
}

export interface CliOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
  timeoutMs?: number;
  /** Run as this unprivileged uid/gid (through setpriv), e.g. to meet real permission errors as root. */
  asUser?: number;
}

/** What every run of the CLI shares: the scrubbed environment, stdin, cwd, timeout. */
function runOptions(options: CliOptions) {
  return {
    env: { AIO_NO_KEYRING: '1', ...baseEnv(), ...options.env },
    extendEnv: false,
    input: options.input ?? '',
    cwd: options.cwd ?? ROOT,
    reject: false,
    timeout: options.timeoutMs ?? 120_000,
  } as const;
}

/** Starts `aio args…`; await it for the result (never rejects on a non-zero exit). */
export function aioProcess(args: string[], options: CliOptions = {}): ResultPromise {
  const command = [process.execPath, path.join(ROOT, 'bin', 'aio'), ...args];
  const argv =
    options.asUser === undefined
      ? command
      : ['setpriv', `--reuid=${options.asUser}`, `--regid=${options.asUser}`, '--clear-groups', ...command];
  return execa(argv[0] as string, argv.slice(1), runOptions(options));
}

export async function aio(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const r = await aioProcess(args, options);
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Runs `aio args…` and keeps its stdout as bytes (`aio download FILE -`). */
export async function aioBytes(
  args: string[],
  options: CliOptions = {},
): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  const r = await execa(process.execPath, [path.join(ROOT, 'bin', 'aio'), ...args], {
    ...runOptions(options),
    encoding: 'buffer',
  });
  return {
    exitCode: r.exitCode ?? -1,
    stdout: Buffer.from(r.stdout),
    stderr: Buffer.from(r.stderr).toString(),
  };
}

/**
 * Runs `aio args… | reader` in bash with `pipefail`: the exit code is aio's unless the
 * reader fails. `reader` is shell text written by the test, never user input.
 */
export async function aioPiped(args: string[], reader: string, options: CliOptions = {}): Promise<CliResult> {
  const quote = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, path.join(ROOT, 'bin', 'aio'), ...args].map(quote).join(' ');
  const r = await execa('bash', ['-o', 'pipefail', '-c', `${command} | ${reader}`], runOptions(options));
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Parses `--json` output: one document, or the last line of an NDJSON stream. */
export function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n').filter(Boolean);
  return JSON.parse(lines[lines.length - 1] as string) as T;
}
