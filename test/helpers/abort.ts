/**
 * "The server closes the file when the client goes away": GETs `path`, reads one chunk of
 * the answer, destroys the connection, then waits (up to 3 s) until this process holds no
 * more file descriptors than before the request. Server and test share the process, so
 * `/proc/self/fd` counts the server's open blob too.
 */
import fs from 'node:fs';
import http from 'node:http';
import { expect } from 'vitest';

export async function expectFileClosedAfterAbort(
  port: number,
  path: string,
  headers: Record<string, string>,
  status: number,
): Promise<void> {
  const openFds = () => fs.readdirSync('/proc/self/fd').length;
  const before = openFds();
  await new Promise<void>((resolve, reject) => {
    const req = http.get({ port, path, headers }, (res) => {
      expect(res.statusCode).toBe(status);
      res.once('data', () => {
        // Read one chunk, then vanish with most of the answer unsent.
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
  });
  const deadline = Date.now() + 3000;
  while (openFds() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(openFds()).toBeLessThanOrEqual(before);
}
