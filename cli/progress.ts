/**
 * Progress for people, on a terminal only (never with --json, --quiet, --no-progress or
 * without a TTY): cli-progress bars per file and overall (bytes, rate, ETA), and an ora
 * spinner while waiting for the server.
 */
import type { Output } from './output.js';
import { formatBytes } from './output.js';

export interface Bar {
  update(value: number): void;
  stop(): void;
}

export interface Progress {
  bar(label: string, total: number): Bar;
  /** Shows a spinner with `text` until the returned function is called. */
  spin(text: string): () => void;
  stop(): void;
}

const silent: Progress = { bar: () => ({ update() {}, stop() {} }), spin: () => () => {}, stop() {} };

function rate(bytes: number, startedAt: number): string {
  const seconds = (Date.now() - startedAt) / 1000;
  return seconds > 0.2 ? `${formatBytes(Math.round(bytes / seconds))}/s` : '-';
}

/** `totalBytes`: size of the whole batch, for the overall bar (omit for a single file). */
export async function createProgress(out: Output, totalBytes?: number): Promise<Progress> {
  if (!out.progress) return silent;
  const { MultiBar, Presets } = await import('cli-progress');
  const multi = new MultiBar(
    {
      stream: out.errStream as NodeJS.WritableStream & NodeJS.WriteStream,
      clearOnComplete: false,
      hideCursor: true,
      format: ' {bar} {percentage}% | {done}/{size} | {rate} | ETA {eta_formatted} | {label}',
      autopadding: true,
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  const started = Date.now();
  let overallDone = 0;
  const overall =
    totalBytes !== undefined
      ? multi.create(Math.max(totalBytes, 1), 0, {
          label: 'total',
          done: formatBytes(0),
          size: formatBytes(totalBytes),
          rate: '-',
        })
      : null;
  return {
    bar(label, total) {
      const barStarted = Date.now();
      let last = 0;
      const bar = multi.create(Math.max(total, 1), 0, {
        label,
        done: formatBytes(0),
        size: formatBytes(total),
        rate: '-',
      });
      return {
        update: (value) => {
          overallDone += value - last;
          last = value;
          bar.update(value, { done: formatBytes(value), rate: rate(value, barStarted) });
          overall?.update(overallDone, { done: formatBytes(overallDone), rate: rate(overallDone, started) });
        },
        stop: () => {
          bar.stop();
          multi.remove(bar);
        },
      };
    },
    spin(text) {
      let stopped = false;
      let stopSpinner = () => {};
      void import('ora').then(({ default: ora }) => {
        if (stopped) return;
        const spinner = ora({
          text,
          stream: out.errStream as NodeJS.WritableStream & NodeJS.WriteStream,
        }).start();
        stopSpinner = () => spinner.stop();
      });
      return () => {
        stopped = true;
        stopSpinner();
      };
    },
    stop: () => multi.stop(),
  };
}
