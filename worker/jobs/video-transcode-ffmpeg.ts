/**
 * Running ffmpeg on hostile input. The input is whatever a user uploaded, so every run:
 * - reads no stdin (`-nostdin`) and opens only local files and pipes
 *   (`-protocol_whitelist file,pipe`: no network, no `concat:`/`subfile:` tricks);
 * - accepts only plain container demuxers (`-format_whitelist`): playlists (HLS, DASH,
 *   concat lists) that could pull other local files into the output are refused;
 * - reads at most `-t` seconds of input, writes at most `-fs` bytes;
 * - is killed (SIGKILL) when it runs past its wall-clock timeout;
 * - gets an environment holding only PATH, and its arguments as an argv array (no shell).
 */
import { spawn } from 'node:child_process';

/** Demuxers allowed to read uploads (ffmpeg matches any name of a multi-name demuxer such as `mov,mp4,…`). */
export const INPUT_FORMATS = ['mov', 'matroska', 'avi', 'mpegts', 'flv', 'ogg', 'mpeg', 'asf'].join(',');

/** Options every run puts before `-i`. */
export function inputGuards(maxInputSeconds: number): string[] {
  return [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-protocol_whitelist',
    'file,pipe',
    '-format_whitelist',
    INPUT_FORMATS,
    '-t',
    String(maxInputSeconds),
  ];
}

export interface FfmpegRun {
  /** Exit code; `null` when killed. */
  code: number | null;
  timedOut: boolean;
  /** The end of stderr (at most `STDERR_KEEP` characters), for the failure reason. */
  stderr: string;
}

const STDERR_KEEP = 2000;

/**
 * Runs `ffmpegPath` with `args`. Resolves with the outcome, whatever the exit code;
 * rejects only when the process cannot be started (`ENOENT`, `EACCES`, `EAGAIN` …).
 */
export function runFfmpeg(
  ffmpegPath: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<FfmpegRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      shell: false,
    });
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut, stderr: stderr.trim() });
    });
  });
}

/**
 * Whether ffmpeg can run: `{ ok: true }` or `{ ok: false, reason }` when the
 * binary is missing, not executable or does not answer `-version` within 10 s.
 */
export async function probeFfmpeg(ffmpegPath: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    const run = await runFfmpeg(ffmpegPath, ['-hide_banner', '-version'], 10_000);
    if (run.code === 0) return { ok: true };
    return { ok: false, reason: `ffmpeg at "${ffmpegPath}" does not work (exit ${String(run.code)}).` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, reason: `ffmpeg is not available at "${ffmpegPath}" (${code}).` };
  }
}
