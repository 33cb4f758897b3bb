/**
 * Connections for ranged GETs that land the body straight in a caller's buffer.
 *
 * `RawRangeConnection` (plain http) speaks just enough HTTP/1.1 for `GET` + `Range` on a
 * keep-alive socket, and has the kernel read the body directly into the destination
 * buffer (`net.Socket`'s `onread` with a buffer per read). Compared with `http.get`
 * this skips the parser's copy of every 64 KiB, the allocation of a buffer per socket
 * read (and its garbage collection) and the stream machinery: on the 2-core test VM
 * that was ~0.3 s of main-thread CPU per GiB. Anything it does not expect (a status
 * other than 206, a transfer coding, a different Content-Range) is reported, not
 * interpreted: the caller then falls back to the ordinary client.
 *
 * `NodeRangeConnection` does the same through `http(s).get` (used for https, where the
 * TLS layer owns the socket reads).
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { USER_AGENT } from './client.js';

/** Same idle limit as the single-stream download. */
const IDLE_TIMEOUT_MS = 60_000;
/** Room for a response head; a longer one is refused. */
const HEAD_BYTES = 16 * 1024;

/** A response other than the expected 206 for exactly the bytes asked for. */
export class UnexpectedResponse extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'UnexpectedResponse';
  }
}

export interface RangeConnection {
  /**
   * GET bytes `start`..`start + length - 1` of the URL into `into[0..length)`, calling
   * `onFilled(filled)` as they arrive. Rejects with `UnexpectedResponse` for any answer
   * other than a 206 with `Content-Range: bytes start-end/size`, or a network error.
   */
  get(
    headers: Readonly<Record<string, string>>,
    start: number,
    length: number,
    size: number,
    into: Buffer,
    onFilled: (filled: number) => void,
  ): Promise<void>;
  /** Closes the connection; a request in progress rejects. */
  close(): void;
}

/** A connection for `url`: the raw one for http, Node's client for https. */
export function rangeConnection(url: URL, mode: 'auto' | 'node' = 'auto'): RangeConnection {
  return url.protocol === 'http:' && mode === 'auto'
    ? new RawRangeConnection(url)
    : new NodeRangeConnection(url);
}

/** The header lines of a request; refuses values that would split the head. */
function headerLines(headers: Readonly<Record<string, string>>): string {
  let lines = '';
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new TypeError(`Invalid header ${name}.`);
    lines += `${name}: ${value}\r\n`;
  }
  return lines;
}

interface Pending {
  start: number;
  length: number;
  size: number;
  into: Buffer;
  onFilled: (filled: number) => void;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Body bytes received so far. */
  filled: number;
  /** Head bytes received so far (in `head`), until the head is complete. */
  headBytes: number;
  inBody: boolean;
  /** The server asked to close the connection after this response. */
  closeAfter: boolean;
}

export class RawRangeConnection implements RangeConnection {
  private socket: net.Socket | null = null;
  private readonly head = Buffer.allocUnsafe(HEAD_BYTES);
  private pending: Pending | null = null;
  /** Whether any byte of the current response arrived. */
  private received = false;
  private closed = false;

  constructor(private readonly url: URL) {}

  async get(
    headers: Readonly<Record<string, string>>,
    start: number,
    length: number,
    size: number,
    into: Buffer,
    onFilled: (filled: number) => void,
  ): Promise<void> {
    const reused = this.socket !== null;
    try {
      await this.exchange(headers, start, length, size, into, onFilled);
    } catch (err) {
      // A kept-alive connection the server closed (idle timeout) just as the request
      // went out: nothing came back, so asking again on a new connection is safe.
      if (!reused || this.closed || this.received || err instanceof UnexpectedResponse) throw err;
      await this.exchange(headers, start, length, size, into, onFilled);
    }
  }

  /** Closes the connection for good; a request in progress rejects. */
  close(): void {
    this.closed = true;
    this.drop(new Error('The connection was closed.'));
  }

  private exchange(
    headers: Readonly<Record<string, string>>,
    start: number,
    length: number,
    size: number,
    into: Buffer,
    onFilled: (filled: number) => void,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.closed) throw new Error('The connection was closed.');
      if (this.pending) throw new Error('One request at a time.');
      const request =
        `GET ${this.url.pathname}${this.url.search} HTTP/1.1\r\n` +
        `host: ${this.url.host}\r\n` +
        headerLines({ 'user-agent': USER_AGENT, ...headers }) +
        `range: bytes=${start}-${start + length - 1}\r\n` +
        `\r\n`;
      this.received = false;
      this.pending = {
        start,
        length,
        size,
        into,
        onFilled,
        resolve,
        reject,
        filled: 0,
        headBytes: 0,
        inBody: false,
        closeAfter: false,
      };
      this.connection().write(request, 'latin1');
    });
  }

  /** Drops the socket; the request in progress, if any, rejects with `err`. */
  private drop(err: Error): void {
    const socket = this.socket;
    this.socket = null;
    this.settle(err);
    socket?.destroy();
  }

  private connection(): net.Socket {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const socket = net.connect({
      host: this.url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(this.url.port || 80),
      noDelay: true,
      onread: {
        // Called before every read: where the kernel should put the next bytes.
        buffer: () => this.readTarget(),
        callback: (n: number) => {
          this.onRead(n);
          return true;
        },
      },
    });
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy(new Error('ETIMEDOUT: no data for 60 s')));
    // Only the current socket's end concerns the request in progress: one that was
    // dropped already (out of step, or closed after its response) has no request.
    const lost = (err?: Error): void => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.settle(err ?? new Error('ECONNRESET: the server closed the connection'));
    };
    socket.on('error', lost);
    socket.once('close', () => lost());
    // A server that half-closes ends this connection; the next request opens another.
    socket.once('end', () => socket.destroy());
    this.socket = socket;
    return socket;
  }

  /** The body's remaining bytes while in a body; the head buffer otherwise. */
  private readTarget(): Buffer {
    const p = this.pending;
    if (p?.inBody) return p.into.subarray(p.filled, p.length);
    return p ? this.head.subarray(p.headBytes) : this.head;
  }

  /** `n` bytes landed in the buffer `readTarget` gave for this read. */
  private onRead(n: number): void {
    this.received = true;
    const p = this.pending;
    if (p === null) {
      // Bytes nobody asked for: the connection is out of step.
      this.socket?.destroy(new Error('Unexpected data on an idle connection.'));
      return;
    }
    if (p.inBody) {
      p.filled += n;
      p.onFilled(p.filled);
      if (p.filled === p.length) this.finish(p);
      return;
    }
    p.headBytes += n;
    const end = this.head.subarray(0, p.headBytes).indexOf('\r\n\r\n');
    if (end < 0) {
      if (p.headBytes === HEAD_BYTES) this.fail(new Error('The response head is too long.'));
      return;
    }
    const problem = checkHead(this.head.toString('latin1', 0, end), p);
    if (problem) {
      this.fail(problem);
      return;
    }
    // Body bytes that came with the head.
    const extra = p.headBytes - (end + 4);
    if (extra > p.length) {
      this.fail(new Error('The server sent more than it announced.'));
      return;
    }
    this.head.copy(p.into, 0, end + 4, p.headBytes);
    p.inBody = true;
    p.filled = extra;
    if (extra > 0) p.onFilled(extra);
    if (p.filled === p.length) this.finish(p);
  }

  private finish(p: Pending): void {
    this.pending = null;
    if (p.closeAfter) this.drop(new Error('Closed after the response.'));
    p.resolve();
  }

  /** Fails the request in progress and drops the connection (it is out of step). */
  private fail(err: Error): void {
    this.drop(err);
  }

  private settle(err: Error): void {
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }
}

/** Checks a response head against the request; returns what is wrong, or null. */
function checkHead(head: string, p: Pending): Error | null {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = /^HTTP\/1\.([01]) (\d{3})/.exec(statusLine);
  if (!status) return new Error(`Not an HTTP response: ${statusLine.slice(0, 40)}`);
  const code = Number(status[2]);
  const fields = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return new Error('A malformed response header.');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const seen = fields.get(name);
    fields.set(name, seen === undefined ? value : `${seen}, ${value}`);
  }
  const expected = `bytes ${p.start}-${p.start + p.length - 1}/${p.size}`;
  if (code !== 206 || fields.get('content-range') !== expected) {
    return new UnexpectedResponse(
      code,
      `Expected 206 ${expected}, got ${code} ${fields.get('content-range')}.`,
    );
  }
  const coding = fields.get('transfer-encoding');
  if (coding !== undefined && coding.toLowerCase() !== 'identity') {
    return new UnexpectedResponse(code, `Unexpected Transfer-Encoding ${coding}.`);
  }
  if (fields.get('content-length') !== String(p.length)) {
    return new UnexpectedResponse(code, `Expected Content-Length ${p.length}.`);
  }
  const connection = fields.get('connection')?.toLowerCase() ?? '';
  p.closeAfter = status[1] === '0' ? !connection.includes('keep-alive') : connection.includes('close');
  return null;
}

/** The same contract on Node's HTTP client (keep-alive through the global agents). */
export class NodeRangeConnection implements RangeConnection {
  private request: http.ClientRequest | null = null;
  private closed = false;

  constructor(private readonly url: URL) {}

  get(
    headers: Readonly<Record<string, string>>,
    start: number,
    length: number,
    size: number,
    into: Buffer,
    onFilled: (filled: number) => void,
  ): Promise<void> {
    const lib = this.url.protocol === 'https:' ? https : http;
    return new Promise<void>((resolve, reject) => {
      if (this.closed) throw new Error('The connection was closed.');
      const request = lib.get(
        this.url,
        { headers: { 'user-agent': USER_AGENT, ...headers, range: `bytes=${start}-${start + length - 1}` } },
        (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          const expected = `bytes ${start}-${start + length - 1}/${size}`;
          if (status !== 206 || res.headers['content-range'] !== expected) {
            res.destroy();
            reject(
              new UnexpectedResponse(
                status,
                `Expected 206 ${expected}, got ${status} ${res.headers['content-range']}.`,
              ),
            );
            return;
          }
          let filled = 0;
          res.on('data', (c: Buffer) => {
            if (filled + c.length > length) {
              res.destroy(new Error('The server sent more than it announced.'));
              return;
            }
            c.copy(into, filled);
            filled += c.length;
            onFilled(filled);
          });
          res.once('end', () => {
            if (filled === length) resolve();
            else reject(new Error(`The response ended after ${filled} of ${length} bytes.`));
          });
          res.once('error', reject);
          // A connection that breaks mid-body closes without 'end'.
          res.once('close', () => {
            if (filled !== length)
              reject(new Error(`ECONNRESET: closed after ${filled} of ${length} bytes.`));
          });
        },
      );
      this.request = request;
      request.once('close', () => {
        if (this.request === request) this.request = null;
      });
      request.setTimeout(IDLE_TIMEOUT_MS, () => request.destroy(new Error('ETIMEDOUT: no data for 60 s')));
      request.on('error', reject);
    });
  }

  close(): void {
    this.closed = true;
    this.request?.destroy();
    this.request = null;
  }
}
