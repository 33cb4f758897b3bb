/**
 * An app served on a free loopback port, and an `ApiClient` signed in as a test user:
 * for client code (the daemon's operations and folders) that talks real HTTP.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../../contract/client.js';
import type { TestUser } from './app.js';

export interface Served {
  client: ApiClient;
  close(): Promise<void>;
}

export async function serveForUser(app: http.RequestListener, user: TestUser): Promise<Served> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    client: new ApiClient(`http://127.0.0.1:${port}`, {
      current: async () => user.accessToken,
      refresh: async () => null,
    }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
