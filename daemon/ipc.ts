/**
 * Control of a running daemon over a Unix socket in the config dir (mode 0600, no TCP):
 * one JSON request per line, one JSON answer per line, `{ ok: true, result }` or
 * `{ ok: false, error: { code, message } }`.
 */
import fs from 'node:fs';
import net from 'node:net';
import { AppError, isErrorCode } from '../contract/errors.js';

export type IpcCommand = 'ping' | 'status' | 'pause' | 'resume' | 'rescan' | 'stop' | 'watch-changed';

export interface IpcRequest {
  cmd: IpcCommand;
  /** A watched folder (absolute); absent = all folders. */
  local?: string;
  /** With `resume`: let the deletions held by the mass-delete guard through. */
  confirmDeletes?: boolean;
}

export type IpcHandler = (req: IpcRequest) => Promise<unknown>;

/** Listens on `socketPath` (replacing a stale socket file; the caller holds the daemon lock). */
export async function listenIpc(socketPath: string, handler: IpcHandler): Promise<net.Server> {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        void answer(line).then((reply) => {
          if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
        });
      }
    });
  });
  const answer = async (line: string): Promise<unknown> => {
    try {
      const req = JSON.parse(line) as IpcRequest;
      return { ok: true, result: (await handler(req)) ?? null };
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'INTERNAL';
      return { ok: false, error: { code, message: err instanceof Error ? err.message : String(err) } };
    }
  };
  // The socket is created with the process umask; narrow it so only the owner can connect.
  const previous = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  fs.chmodSync(socketPath, 0o600);
  return server;
}

/** Sends one request; SERVICE_UNAVAILABLE "not running" when nothing listens. */
export async function ipcRequest<T = unknown>(
  socketPath: string,
  req: IpcRequest,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new AppError('SERVICE_UNAVAILABLE', 'The daemon did not answer in time.'));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      socket.end();
      const reply = JSON.parse(buffer.slice(0, nl)) as
        { ok: true; result: T } | { ok: false; error: { code: string; message: string } };
      if (reply.ok) resolve(reply.result);
      else
        reject(
          new AppError(isErrorCode(reply.error.code) ? reply.error.code : 'INTERNAL', reply.error.message),
        );
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')
        reject(
          new AppError(
            'SERVICE_UNAVAILABLE',
            'The aio daemon is not running (start it with `aio daemon start`).',
          ),
        );
      else
        reject(
          new AppError('SERVICE_UNAVAILABLE', `Cannot talk to the daemon: ${err.message}`, { cause: err }),
        );
    });
  });
}

/** True when a daemon answers on the socket. */
export async function daemonAnswers(socketPath: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    await ipcRequest(socketPath, { cmd: 'ping' }, timeoutMs);
    return true;
  } catch {
    return false;
  }
}
