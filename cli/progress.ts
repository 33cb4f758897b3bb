/** Progress bars on a terminal (cli-progress), nothing otherwise. */
import type { Output } from './output.js';
import { formatBytes } from './output.js';

export interface Bar {
  update(value: number): void;
  stop(): void;
}

export interface Progress {
  bar(label: string, total: number): Bar;
  stop(): void;
}

const silent: Progress = { bar: () => ({ update() {}, stop() {} }), stop() {} };

export async function createProgress(out: Output): Promise<Progress> {
  if (!out.progress) return silent;
  const { MultiBar, Presets } = await import('cli-progress');
  const multi = new MultiBar(
    {
      stream: out.errStream as NodeJS.WritableStream & NodeJS.WriteStream,
      clearOnComplete: false,
      hideCursor: true,
      format: ' {bar} {percentage}% | {done}/{size} | {label}',
      autopadding: true,
    },
    Presets.shades_classic,
  );
  return {
    bar(label, total) {
      const bar = multi.create(Math.max(total, 1), 0, {
        label,
        done: formatBytes(0),
        size: formatBytes(total),
      });
      return {
        update: (value) => bar.update(value, { done: formatBytes(value) }),
        stop: () => bar.stop(),
      };
    },
    stop: () => multi.stop(),
  };
}
