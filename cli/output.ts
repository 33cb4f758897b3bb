/**
 * Output for people and for scripts, kept apart. With `--json` stdout carries exactly
 * one JSON document (or NDJSON for streams) and nothing else; human messages, progress
 * and warnings go to stderr. `--quiet` silences everything but errors and results.
 */
export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  progress: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  /** Progress bars only on a terminal, never with --json/--quiet/--no-progress. */
  readonly progress: boolean;
  private readonly stdout: NodeJS.WritableStream;
  private readonly stderr: NodeJS.WritableStream;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.quiet = options.quiet;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    const term = this.stderr as { isTTY?: boolean; columns?: number };
    // A pseudo-terminal that reports no width (e.g. `script`) cannot host redrawn lines.
    const tty = Boolean(term.isTTY) && (term.columns ?? 0) > 0;
    this.progress = options.progress && tty && !options.json && !options.quiet;
  }

  /** The command's result: `data` as JSON with --json, else the human rendering. */
  result(data: unknown, human: () => string | string[] | null): void {
    if (this.json) {
      this.stdout.write(`${JSON.stringify(data)}\n`);
      return;
    }
    const text = human();
    if (text === null) return;
    const lines = Array.isArray(text) ? text : [text];
    if (lines.length) this.stdout.write(`${lines.join('\n')}\n`);
  }

  /** One event of a stream (NDJSON with --json, else the human line unless quiet). */
  event(data: unknown, human: string | null): void {
    if (this.json) this.stdout.write(`${JSON.stringify(data)}\n`);
    else if (human !== null && !this.quiet) this.stderr.write(`${human}\n`);
  }

  /** A message for people (stderr). */
  info(message: string): void {
    if (!this.quiet && !this.json) this.stderr.write(`${message}\n`);
  }

  warn(message: string): void {
    this.stderr.write(`warning: ${message}\n`);
  }

  error(message: string): void {
    this.stderr.write(`error: ${message}\n`);
  }

  /** stdout for a command's raw bytes (`aio download FILE -`); never with --json. */
  get dataStream(): NodeJS.WritableStream {
    if (this.json) throw new Error('stdout carries the JSON document.');
    return this.stdout;
  }

  get errStream(): NodeJS.WritableStream {
    return this.stderr;
  }
}

/**
 * A local path as it goes into a line of text: control characters (a newline, an escape,
 * …, which a Linux file name may hold) are written as escapes, so one path stays one line
 * and cannot move the terminal's cursor. Printable text, any script, is left as it is.
 */
export function shown(path: string): string {
  return path.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    return NAMED_ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** Pads columns for a simple table. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}
