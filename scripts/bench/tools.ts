/**
 * The systems under test and the anchors, as started by the harness: an aio-server with a
 * logged-in CLI profile, the raw HTTP sink, `rclone serve webdav`, and pairs of local
 * Syncthing instances. Everything binds 127.0.0.1.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, runTimed, startService, tempDir, waitFor, type RunResult, type Service } from './proc.js';
import { LocalBlobStore } from '../../core/adapters/blob/local.js';
import { sha256Stream, type Manifest } from './util.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PASSWORD = 'bench password 1234';

// ---------------------------------------------------------------- aio

export interface Aio {
  server: Service;
  url: string;
  dataDir: string;
  storageDir: string;
  configDir: string;
  token: string;
  env: Record<string, string>;
  /** Runs `bin/aio ARGS` (timed, peak RSS). */
  cli(args: string[], opts?: { allowFail?: boolean; input?: string }): Promise<RunResult>;
  api<T>(method: string, route: string, body?: unknown): Promise<T>;
}

export async function startAio(extraEnv: Record<string, string> = {}): Promise<Aio> {
  const dataDir = await tempDir('aio-data');
  const configDir = await tempDir('aio-config');
  // Run as users run it (`aio-server`, or `npm start`): its shebang carries node's flags.
  const server = startService('aio-server', path.join(ROOT, 'bin', 'aio-server'), [], {
    cwd: ROOT,
    env: {
      AIO_PORT: '0',
      AIO_HOST: '127.0.0.1',
      AIO_DATA_DIR: dataDir,
      AIO_BCRYPT_COST: '4',
      AIO_LOG_LEVEL: 'warn',
      AIO_RATE_LIMIT_API: '1000000',
      AIO_RATE_LIMIT_LOGIN: '1000',
      ...extraEnv,
    },
  });
  const m = await server.waitForLine(/^aio-server listening on (http:\/\/\S+)$/, 30_000);
  const url = m[1] as string;
  const env = { AIO_SERVER: url, AIO_CONFIG_DIR: configDir, AIO_NO_KEYRING: '1' };
  const cli: Aio['cli'] = (args, opts = {}) =>
    runTimed(
      `aio ${args[0] ?? ''}`,
      process.execPath,
      [path.join(ROOT, 'bin', 'aio'), '--no-progress', ...args],
      {
        cwd: ROOT,
        env,
        ...opts,
      },
    );
  const email = 'bench@example.test';
  await cli(['register', '--email', email, '--password-stdin'], { input: PASSWORD });
  await cli(['login', '--email', email, '--password-stdin'], { input: `${PASSWORD}\n` });
  const login = await fetch(`${url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (login.status !== 200) throw new Error(`login answered ${login.status}: ${await login.text()}`);
  const token = ((await login.json()) as { accessToken: string }).accessToken;
  const api = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${route} → ${res.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : null) as T;
  };
  return { server, url, dataDir, storageDir: path.join(dataDir, 'storage'), configDir, token, env, cli, api };
}

interface Entry {
  kind: 'file' | 'folder';
  name: string;
  path: string;
  sha256: string | null;
  size: number | null;
  status?: string;
}

/** Every file under `remote` (relative path → entry), paging through the listing. */
export async function remoteFiles(aio: Aio, remote: string): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  const queue: Array<{ path: string; rel: string }> = [{ path: remote, rel: '' }];
  while (queue.length) {
    const dir = queue.shift() as { path: string; rel: string };
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ path: dir.path, limit: '1000' });
      if (cursor) q.set('cursor', cursor);
      const page: { items: Entry[]; nextCursor: string | null } = await aio.api(
        'GET',
        `/api/v1/fs/list?${q}`,
      );
      for (const e of page.items) {
        const rel = dir.rel ? `${dir.rel}/${e.name}` : e.name;
        if (e.kind === 'folder') queue.push({ path: e.path, rel });
        else out.set(rel, e);
      }
      cursor = page.nextCursor;
    } while (cursor);
  }
  return out;
}

/**
 * Verifies what the server holds under `remote` against `expected`: the listing has every
 * path with the expected sha256 (no extras), and the content-addressed blob on disk hashes
 * to that sha256 (every distinct blob is read through the server's blob store, packed or
 * not, and hashed).
 */
export async function verifyAio(aio: Aio, remote: string, expected: Manifest): Promise<void> {
  const files = await remoteFiles(aio, remote);
  const problems: string[] = [];
  for (const [rel, sha] of expected) {
    const e = files.get(rel);
    if (!e) problems.push(`missing ${rel}`);
    else if (e.sha256 !== sha) problems.push(`sha mismatch ${rel}`);
  }
  for (const rel of files.keys()) if (!expected.has(rel)) problems.push(`extra ${rel}`);
  const blobs = await LocalBlobStore.open(aio.storageDir);
  try {
    for (const sha of new Set(expected.values())) {
      const actual = await sha256Stream(await blobs.read(sha)).catch(() => 'unreadable');
      if (actual !== sha) problems.push(`blob ${sha.slice(0, 12)} on disk is ${actual.slice(0, 12)}`);
    }
  } finally {
    await blobs.close();
  }
  if (problems.length)
    throw new Error(`aio ${remote}: ${problems.length} problem(s): ${problems.slice(0, 5).join(', ')}`);
}

// ---------------------------------------------------------------- sink

export interface Sink {
  service: Service;
  url: string;
  root: string;
}

export async function startSink(): Promise<Sink> {
  const root = await tempDir('sink');
  const service = startService(
    'sink',
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'scripts/bench/sink.ts'), root],
    {
      cwd: ROOT,
    },
  );
  const m = await service.waitForLine(/^sink listening on (http:\/\/\S+)$/);
  return { service, url: m[1] as string, root };
}

// ---------------------------------------------------------------- rclone

export interface Webdav {
  service: Service;
  url: string;
  root: string;
  configFile: string;
  /** `rclone ARGS --config … --webdav-url …` (timed). */
  rclone(args: string[], opts?: { timeoutMs?: number; allowFail?: boolean }): Promise<RunResult>;
}

/** `rclone serve webdav` of a fresh local dir; the client uses an on-the-fly `:webdav:` remote. */
export async function startWebdav(): Promise<Webdav> {
  const root = await tempDir('webdav');
  const conf = await tempDir('rclone-conf');
  const configFile = path.join(conf, 'rclone.conf');
  await fs.writeFile(configFile, '');
  const port = await freePort();
  const service = startService('rclone serve webdav', 'rclone', [
    'serve',
    'webdav',
    root,
    '--addr',
    `127.0.0.1:${port}`,
    '--config',
    configFile,
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor(
    'rclone serve webdav',
    async () => (await fetch(url, { method: 'OPTIONS' }).catch(() => null)) !== null,
    20_000,
  );
  return {
    service,
    url,
    root,
    configFile,
    rclone: (args, opts = {}) =>
      runTimed(
        `rclone ${args[0] ?? ''}`,
        'rclone',
        [...args, '--config', configFile, '--webdav-url', url],
        opts,
      ),
  };
}

// ---------------------------------------------------------------- syncthing

export interface SyncthingNode {
  service: Service;
  home: string;
  folder: string;
  apiUrl: string;
  apiKey: string;
  deviceId: string;
  rest<T>(method: string, route: string): Promise<T>;
}

export interface SyncthingPair {
  a: SyncthingNode;
  b: SyncthingNode;
  folderId: string;
}

function setOption(xml: string, name: string, value: string): string {
  const re = new RegExp(`<${name}>[^<]*</${name}>`);
  if (!re.test(xml)) throw new Error(`syncthing config.xml has no <${name}>`);
  return xml.replace(re, `<${name}>${value}</${name}>`);
}

interface NodeSpec {
  home: string;
  folder: string;
  guiPort: number;
  listenPort: number;
  apiKey: string;
  deviceId: string;
}

async function generateNode(prefix: string): Promise<NodeSpec> {
  const home = await tempDir(`st-${prefix}-home`);
  const folder = await tempDir(`st-${prefix}-folder`);
  await fs.mkdir(path.join(folder, '.stfolder'));
  const gen = await runTimed('syncthing generate', 'syncthing', [
    'generate',
    `--home=${home}`,
    '--no-default-folder',
    '--skip-port-probing',
  ]);
  const id = /Device ID:\s*([A-Z0-9-]{63})/.exec(gen.stdout + gen.stderr)?.[1];
  const xml = await fs.readFile(path.join(home, 'config.xml'), 'utf8');
  const apiKey = /<apikey>([^<]+)<\/apikey>/.exec(xml)?.[1];
  if (!id || !apiKey)
    throw new Error(`syncthing generate: no device id or api key\n${gen.stdout}${gen.stderr}`);
  return { home, folder, guiPort: await freePort(), listenPort: await freePort(), apiKey, deviceId: id };
}

async function writeConfig(
  self: NodeSpec,
  peer: NodeSpec,
  folderId: string,
  watcherDelayS: number,
): Promise<void> {
  const file = path.join(self.home, 'config.xml');
  let xml = await fs.readFile(file, 'utf8');
  xml = xml.replace(/<address>127\.0\.0\.1:8384<\/address>/, `<address>127.0.0.1:${self.guiPort}</address>`);
  xml = setOption(xml, 'listenAddress', `tcp://127.0.0.1:${self.listenPort}`);
  for (const [k, v] of [
    ['globalAnnounceEnabled', 'false'],
    ['localAnnounceEnabled', 'false'],
    ['relaysEnabled', 'false'],
    ['natEnabled', 'false'],
    ['startBrowser', 'false'],
    ['urAccepted', '-1'],
    ['autoUpgradeIntervalH', '0'],
    ['crashReportingEnabled', 'false'],
    // Default is true (nice 9): on a shared 2-core box that would handicap the anchor.
    ['setLowPriority', 'false'],
    ['reconnectionIntervalS', '1'],
  ] as const)
    xml = setOption(xml, k, v);
  const deviceXml = (d: NodeSpec, name: string) =>
    `    <device id="${d.deviceId}" name="${name}" compression="metadata" introducer="false" skipIntroductionRemovals="false" introducedBy="">\n` +
    `        <address>tcp://127.0.0.1:${d.listenPort}</address>\n        <paused>false</paused>\n        <autoAcceptFolders>false</autoAcceptFolders>\n    </device>\n`;
  const folderXml =
    `    <folder id="${folderId}" label="${folderId}" path="${self.folder}" type="sendreceive" rescanIntervalS="3600" fsWatcherEnabled="true" fsWatcherDelayS="${watcherDelayS}" ignorePerms="false" autoNormalize="true">\n` +
    `        <filesystemType>basic</filesystemType>\n` +
    `        <device id="${self.deviceId}" introducedBy=""></device>\n` +
    `        <device id="${peer.deviceId}" introducedBy=""></device>\n` +
    `        <markerName>.stfolder</markerName>\n    </folder>\n`;
  // Replace the self device block (address dynamic) with ours plus the peer, and add the folder.
  xml = xml.replace(
    / {4}<device id="[A-Z0-9-]{63}"[\s\S]*?<\/device>\n/,
    deviceXml(self, 'self') + deviceXml(peer, 'peer') + folderXml,
  );
  await fs.writeFile(file, xml);
}

function startNode(spec: NodeSpec, name: string): SyncthingNode {
  const service = startService(
    name,
    'syncthing',
    ['serve', `--home=${spec.home}`, '--no-browser', '--no-restart', '--no-upgrade'],
    {
      env: { STNORESTART: '1', STNOUPGRADE: '1', STNODEFAULTFOLDER: '1' },
    },
  );
  const apiUrl = `http://127.0.0.1:${spec.guiPort}`;
  const rest = async <T>(method: string, route: string): Promise<T> => {
    const res = await fetch(`${apiUrl}${route}`, { method, headers: { 'X-API-Key': spec.apiKey } });
    const text = await res.text();
    if (res.status >= 300)
      throw new Error(`syncthing ${method} ${route} → ${res.status} ${text.slice(0, 200)}`);
    return (text ? JSON.parse(text) : null) as T;
  };
  return {
    service,
    home: spec.home,
    folder: spec.folder,
    apiUrl,
    apiKey: spec.apiKey,
    deviceId: spec.deviceId,
    rest,
  };
}

export interface FolderStatus {
  state: string;
  needFiles: number;
  needTotalItems: number;
  localFiles: number;
  globalFiles: number;
  inSyncFiles: number;
}

/** Two instances sharing one send-receive folder, connected to each other only (no discovery, relays or NAT). */
export async function startSyncthingPair(watcherDelayS: number): Promise<SyncthingPair> {
  const folderId = 'bench';
  const [sa, sb] = [await generateNode('a'), await generateNode('b')];
  await writeConfig(sa, sb, folderId, watcherDelayS);
  await writeConfig(sb, sa, folderId, watcherDelayS);
  const a = startNode(sa, 'syncthing A');
  const b = startNode(sb, 'syncthing B');
  const up = (n: SyncthingNode) =>
    n.rest('GET', '/rest/system/ping').then(
      () => true,
      () => false,
    );
  await waitFor('syncthing REST API', async () => (await up(a)) && (await up(b)), 60_000, 200);
  await waitFor(
    'syncthing A and B connected',
    async () => {
      const c = await a.rest<{ connections: Record<string, { connected: boolean }> }>(
        'GET',
        '/rest/system/connections',
      );
      return c.connections[sb.deviceId]?.connected === true;
    },
    60_000,
    200,
  );
  await waitFor(
    'syncthing folders idle',
    async () => {
      for (const n of [a, b]) {
        const s = await n.rest<FolderStatus>('GET', `/rest/db/status?folder=${folderId}`);
        if (s.state !== 'idle') return false;
      }
      return true;
    },
    60_000,
    200,
  );
  return { a, b, folderId };
}

export async function folderStatus(n: SyncthingNode, folderId: string): Promise<FolderStatus> {
  return n.rest<FolderStatus>('GET', `/rest/db/status?folder=${folderId}`);
}

export async function stopSyncthingPair(pair: SyncthingPair | null): Promise<void> {
  if (!pair) return;
  await Promise.all([pair.a.service.stop(), pair.b.service.stop()]);
}
