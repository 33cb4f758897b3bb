/**
 * The daemon's JSON log: pino writing synchronously to a file that rotates by size
 * (`daemon.log` → `daemon.log.1` → … keeping `keep` old files).
 */
import fs from 'node:fs';
import pino, { type Logger } from 'pino';

export type { Logger };

export class RotatingFile {
  private fd: number;
  private size: number;

  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {
    this.fd = fs.openSync(file, 'a', 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  write(chunk: string): boolean {
    const bytes = Buffer.from(chunk, 'utf8');
    fs.writeSync(this.fd, bytes);
    this.size += bytes.length;
    if (this.size >= this.maxBytes) this.rotate();
    return true;
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    for (let i = this.keep - 1; i >= 1; i--) {
      try {
        fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      } catch {
        // that generation does not exist yet
      }
    }
    if (this.keep > 0) fs.renameSync(this.file, `${this.file}.1`);
    else fs.rmSync(this.file, { force: true });
    this.fd = fs.openSync(this.file, 'a', 0o600);
    this.size = 0;
  }
}

export function createLogger(file: RotatingFile, level = process.env.AIO_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, file);
}
