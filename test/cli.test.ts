/**
 * End to end: the real `bin/aio` against a real `aio-server` in a temp dir.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aio, aioBytes, aioPiped, lastJson } from './helpers/cli.js';
import { startServer, stopAllProcesses, tempDir, type ServerProcess } from './helpers/processes.js';

let server: ServerProcess;
let dataDir: string;
let configDir: string;
let env: Record<string, string>;
const PASSWORD = 'correct horse battery';

function sha(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

async function filesUnder(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (d: string, rel: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await visit(path.join(d, e.name), r);
      else out.set(r, sha(await fs.readFile(path.join(d, e.name))));
    }
  };
  await visit(dir, '');
  return out;
}

beforeAll(async () => {
  dataDir = await tempDir('aio-cli-data-');
  server = await startServer({ AIO_DATA_DIR: dataDir, AIO_BCRYPT_COST: '4', AIO_LOG_LEVEL: 'warn' });
  configDir = await tempDir('aio-cli-config-');
  env = { AIO_SERVER: server.url, AIO_CONFIG_DIR: configDir };
  const reg = await aio(['register', '--email', 'ada@example.test', '--password-stdin'], {
    env,
    input: PASSWORD,
  });
  expect(reg.exitCode, reg.stderr).toBe(0);
  const login = await aio(['login', '--email', 'ada@example.test', '--password-stdin'], {
    env,
    input: `${PASSWORD}\n`,
  });
  expect(login.exitCode, login.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
});

describe('aio against a real server', () => {
  it('keeps the session in a 0600 file when no keychain answers and reports who is logged in', async () => {
    const who = await aio(['whoami', '--json'], { env });
    expect(who.exitCode, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ email: 'ada@example.test', storageUsed: 0 });
    const stat = await fs.stat(path.join(configDir, 'credentials.json'));
    expect(stat.mode & 0o777).toBe(0o600);
    expect((await fs.stat(configDir)).mode & 0o777).toBe(0o700);
    const creds = await fs.readFile(path.join(configDir, 'credentials.json'), 'utf8');
    expect(creds).not.toContain(PASSWORD);
  });

  it('uploads a tree of 200 files with odd names, lists it and downloads it back byte for byte', async () => {
    const src = await tempDir('aio-cli-src-');
    const tree = path.join(src, 'tree');
    const names = ['with space.txt', 'ünïcödé.md', 'emoji 🎉.bin', 'dash-and_underscore', '日本語.txt'];
    for (let i = 0; i < 200; i++) {
      const depth = i % 4;
      const dir = path.join(tree, ...Array.from({ length: depth }, (_, d) => `level ${d} ✓`));
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, `${i} ${names[i % names.length]}`), randomBytes(100 + (i % 7) * 500));
    }
    const up = await aio(['upload', '-r', tree, '/backup', '--json'], { env });
    expect(up.exitCode, up.stderr).toBe(0);
    expect(lastJson<{ uploaded: number }>(up.stdout)).toMatchObject({ uploaded: 200, failed: [] });

    const ls = await aio(['ls', '-R', '/backup', '--json'], { env });
    expect(ls.exitCode, ls.stderr).toBe(0);
    const entries = JSON.parse(ls.stdout) as Array<{ kind: string; path: string; sha256: string | null }>;
    expect(entries.filter((e) => e.kind === 'file')).toHaveLength(200);

    const dest = await tempDir('aio-cli-dest-');
    const down = await aio(['download', '-r', '/backup/tree', path.join(dest, 'tree'), '--json'], { env });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await filesUnder(path.join(dest, 'tree'))).toEqual(await filesUnder(tree));
    // Remote sha256 values match the local ones too.
    const local = await filesUnder(tree);
    for (const e of entries.filter((x) => x.kind === 'file')) {
      expect(local.get(e.path.replace('/backup/tree/', ''))).toBe(e.sha256);
    }
  }, 120_000);

  it('works in CI with AIO_TOKEN, no TTY and no keychain, writing nothing to the config dir', async () => {
    const created = await aio(['token', 'create', '--name', 'ci', '--scopes', 'read,write', '--json'], {
      env,
    });
    expect(created.exitCode, created.stderr).toBe(0);
    const { token } = JSON.parse(created.stdout) as { token: string };
    expect(token).toMatch(/^aio_/);

    const ciConfig = await tempDir('aio-cli-ci-');
    const ciEnv = { AIO_SERVER: server.url, AIO_CONFIG_DIR: ciConfig, AIO_TOKEN: token };
    const work = await tempDir('aio-cli-work-');
    const file = path.join(work, 'artifact.bin');
    const bytes = randomBytes(300_000);
    await fs.writeFile(file, bytes);

    const up = await aio(['upload', file, '/ci/', '--json'], { env: ciEnv });
    expect(up.exitCode, up.stderr).toBe(0);
    const ls = await aio(['ls', '/ci', '--json'], { env: ciEnv });
    expect(JSON.parse(ls.stdout)).toEqual([
      expect.objectContaining({ name: 'artifact.bin', sha256: sha(bytes) }),
    ]);
    const out = path.join(work, 'back.bin');
    const down = await aio(['download', '/ci/artifact.bin', out], { env: ciEnv });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(sha(await fs.readFile(out))).toBe(sha(bytes));
    expect(await fs.readdir(ciConfig)).toEqual([]);

    // Listed (never with its secret) and revoked from the login session; then refused.
    const listed = await aio(['token', 'ls', '--json'], { env });
    expect(listed.exitCode, listed.stderr).toBe(0);
    const tokens = JSON.parse(listed.stdout) as Array<{ id: string; name: string }>;
    const ci = tokens.find((t) => t.name === 'ci');
    expect(ci).toBeDefined();
    expect(listed.stdout).not.toContain(token);
    const human = await aio(['token', 'ls'], { env });
    expect(human.exitCode, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/NAME[\s\S]*\bci\b/);
    const revoked = await aio(['token', 'revoke', ci?.id ?? ''], { env });
    expect(revoked.exitCode, revoked.stderr).toBe(0);
    expect((await aio(['ls', '/ci'], { env: ciEnv })).exitCode).toBe(3);
  }, 60_000);

  it('moves a 40 MiB file up and back byte for byte: staged past the page cache, downloaded over parallel ranges', async () => {
    // Over 16 MiB the server writes the body with O_DIRECT in aligned blocks; over 32 MiB
    // `aio download` fetches 8 MiB ranges over several connections, hashing on a thread.
    const work = await tempDir('aio-cli-big-');
    const bytes = randomBytes(40 * 1024 * 1024 + 4321);
    const file = path.join(work, 'big.bin');
    await fs.writeFile(file, bytes);
    const up = await aio(['upload', file, '/big/big.bin', '--json'], { env });
    expect(up.exitCode, up.stderr).toBe(0);
    const events = up.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event?: string; sha256?: string; status?: string });
    expect(events.find((e) => e.sha256 !== undefined)).toMatchObject({ sha256: sha(bytes), status: 'ready' });
    const stored = path.join(dataDir, 'storage', 'blobs', sha(bytes).slice(0, 2), sha(bytes));
    expect(sha(await fs.readFile(stored))).toBe(sha(bytes));
    const out = path.join(work, 'back.bin');
    const down = await aio(['download', '/big/big.bin', out, '--json'], { env });
    expect(down.exitCode, down.stderr).toBe(0);
    expect((await fs.readFile(out)).equals(bytes)).toBe(true);
    expect(await fs.readdir(work)).toEqual(['back.bin', 'big.bin']);
  }, 120_000);

  it('skips bytes the server already has and never overwrites a different local file without --force', async () => {
    const work = await tempDir('aio-cli-dedup-');
    const file = path.join(work, 'same.bin');
    await fs.writeFile(file, randomBytes(50_000));
    const first = await aio(['upload', file, '/dedup/a.bin', '--json'], { env });
    expect(first.exitCode, first.stderr).toBe(0);
    const second = await aio(['upload', file, '/dedup/b.bin', '--json'], { env });
    expect(second.exitCode, second.stderr).toBe(0);
    expect(lastJson<{ bytesSent: number }>(second.stdout).bytesSent).toBe(0);

    const other = path.join(work, 'other.bin');
    await fs.writeFile(other, 'different');
    const refused = await aio(['download', '/dedup/a.bin', other], { env });
    expect(refused.exitCode).toBe(5);
    expect(refused.stderr).toMatch(/--force/);
    expect(await fs.readFile(other, 'utf8')).toBe('different');
    const forced = await aio(['download', '/dedup/a.bin', other, '--force'], { env });
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(sha(await fs.readFile(other))).toBe(sha(await fs.readFile(file)));
    const again = await aio(['download', '/dedup/a.bin', other], { env });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^0 file\(s\) downloaded \(0 B\), 1 already there with the same sha256\.$/m);
  }, 60_000);

  it('creates a share link whose URL plain HTTP fetches the bytes from', async () => {
    const work = await tempDir('aio-cli-share-');
    const file = path.join(work, 'shared.bin');
    const bytes = randomBytes(70_000);
    await fs.writeFile(file, bytes);
    expect((await aio(['upload', file, '/share/shared.bin'], { env })).exitCode).toBe(0);
    const created = await aio(['share', 'create', '/share/shared.bin', '--expires', '1d', '--json'], { env });
    expect(created.exitCode, created.stderr).toBe(0);
    const { url } = JSON.parse(created.stdout) as { url: string };
    expect(url.startsWith(`${server.url}/s/`)).toBe(true);
    const res = await fetch(`${url}?dl=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment/);
    expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(bytes));
  }, 60_000);

  it('plans with --dry-run without changing anything and refuses an emptied source', async () => {
    const src = await tempDir('aio-cli-sync-');
    for (let i = 0; i < 10; i++) await fs.writeFile(path.join(src, `f${i}.txt`), `v1 ${i}`);
    const first = await aio(['sync', src, '/synced', '--json'], { env });
    expect(first.exitCode, first.stderr).toBe(0);
    expect(lastJson<{ uploaded: number }>(first.stdout).uploaded).toBe(10);

    // Same size, different content: found by sha256.
    await fs.writeFile(path.join(src, 'f3.txt'), 'v2 3');
    await fs.rm(path.join(src, 'f9.txt'));
    const dry = await aio(['sync', src, '/synced', '--dry-run', '--delete', '--json'], { env });
    expect(dry.exitCode, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout) as {
      uploads: Array<{ path: string }>;
      deletes: Array<{ path: string }>;
    };
    expect(plan.uploads.map((u) => u.path)).toEqual(['/synced/f3.txt']);
    expect(plan.deletes.map((d) => d.path)).toEqual(['/synced/f9.txt']);
    const still = await aio(['ls', '/synced', '--json'], { env });
    expect((JSON.parse(still.stdout) as unknown[]).length).toBe(10);

    // Deleting 8 of 10 exceeds the default 50% budget.
    for (let i = 0; i < 8; i++) await fs.rm(path.join(src, `f${i}.txt`), { force: true });
    const guarded = await aio(['sync', src, '/synced', '--delete'], { env });
    expect(guarded.exitCode).toBe(5);
    expect(guarded.stderr).toMatch(/Refusing to delete/);

    const empty = await tempDir('aio-cli-empty-');
    const refused = await aio(['sync', empty, '/synced', '--delete'], { env });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/empty/);
    expect((JSON.parse((await aio(['ls', '/synced', '--json'], { env })).stdout) as unknown[]).length).toBe(
      10,
    );
  }, 60_000);

  it('skips files whose size and mtime match the server, unless --checksum', async () => {
    const src = await tempDir('aio-cli-quick-');
    for (let i = 0; i < 5; i++) await fs.writeFile(path.join(src, `q${i}.txt`), `one ${i}`);
    const first = await aio(['sync', src, '/quick', '--json'], { env });
    expect(first.exitCode, first.stderr).toBe(0);
    const again = await aio(['sync', src, '/quick', '--json'], { env });
    expect(lastJson<{ uploaded: number; unchanged: number }>(again.stdout)).toMatchObject({
      uploaded: 0,
      unchanged: 5,
    });
    // Same size, new content, the old mtime put back: only a checksum comparison sees it.
    const file = path.join(src, 'q2.txt');
    const { mtime } = await fs.stat(file);
    await fs.writeFile(file, 'two 2');
    await fs.utimes(file, mtime, mtime);
    const quick = await aio(['sync', src, '/quick', '--dry-run', '--json'], { env });
    expect((JSON.parse(quick.stdout) as { uploads: unknown[] }).uploads).toEqual([]);
    const full = await aio(['sync', src, '/quick', '--checksum', '--json'], { env });
    expect(full.exitCode, full.stderr).toBe(0);
    expect(lastJson<{ uploaded: number }>(full.stdout).uploaded).toBe(1);
    const listed = JSON.parse((await aio(['ls', '/quick', '--json'], { env })).stdout) as Array<{
      name: string;
      sha256: string;
    }>;
    expect(listed.find((e) => e.name === 'q2.txt')?.sha256).toBe(sha(Buffer.from('two 2')));
  }, 60_000);

  /**
   * `aio sync` of a folder with `copy.bin` (content the server was given before, under
   * another name: a moved file) and `new.bin` (fresh content), both of about `size` bytes:
   * the copy sends no bytes, the new one all of them, and both are listed with their sha256.
   */
  async function syncKnownAndFresh(remote: string, size: number): Promise<void> {
    const src = await tempDir('aio-cli-known-');
    const have = randomBytes(size);
    const fresh = randomBytes(size + 1);
    const seed = path.join(await tempDir('aio-cli-seed-'), 'seed.bin');
    await fs.writeFile(seed, have);
    expect((await aio(['upload', seed, `${remote}-seed.bin`], { env })).exitCode).toBe(0);
    await fs.writeFile(path.join(src, 'copy.bin'), have);
    await fs.writeFile(path.join(src, 'new.bin'), fresh);
    const r = await aio(['sync', src, remote, '--json'], { env });
    expect(r.exitCode, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; remote?: string; bytesSent?: number; how?: string });
    const sent = new Map(events.filter((e) => e.event === 'uploaded').map((e) => [e.remote, e]));
    expect(sent.get(`${remote}/copy.bin`)).toMatchObject({ bytesSent: 0, how: 'deduplicated' });
    expect(sent.get(`${remote}/new.bin`)).toMatchObject({ bytesSent: fresh.length, how: 'uploaded' });
    const listed = JSON.parse((await aio(['ls', remote, '--json'], { env })).stdout) as Array<{
      name: string;
      sha256: string;
    }>;
    expect(new Map(listed.map((e) => [e.name, e.sha256]))).toEqual(
      new Map([
        ['copy.bin', sha(have)],
        ['new.bin', sha(fresh)],
      ]),
    );
  }

  it('sync sends small new files in batches but still skips the bytes of contents the server has', async () => {
    await syncKnownAndFresh('/known', 4096);
  }, 60_000);

  it('sync hashes a big new file just before sending it, so one the server has (a moved file) sends no bytes', async () => {
    await syncKnownAndFresh('/big-known', 1536 * 1024);
  }, 60_000);

  it('writes one file to stdout with -, checks its sha256 there, and stops quietly when the reader does', async () => {
    const work = await tempDir('aio-cli-stdout-');
    // Past the pack size: stored as a loose blob the test can damage below.
    const bytes = randomBytes(3 * 1024 * 1024 + 77);
    await fs.writeFile(path.join(work, 'dump.bin'), bytes);
    const up = await aio(['upload', path.join(work, 'dump.bin'), '/stdout/dump.bin', '--json'], { env });
    expect(up.exitCode, up.stderr).toBe(0);

    const cat = await aioBytes(['download', '/stdout/dump.bin', '-'], { env, cwd: work });
    expect(cat.exitCode, cat.stderr).toBe(0);
    expect(cat.stdout.equals(bytes)).toBe(true);
    expect(cat.stderr).toBe('');
    expect(await fs.readdir(work)).toEqual(['dump.bin']);

    // A reader that stops after 100 bytes: no error, exit 0, nothing left behind.
    const head = await aioPiped(['download', '/stdout/dump.bin', '-'], 'head -c 100 | wc -c', {
      env,
      cwd: work,
    });
    expect(head.exitCode, head.stderr).toBe(0);
    expect(head.stdout.trim()).toBe('100');
    expect(head.stderr).toBe('');
    expect((await fs.readdir(work)).sort()).toEqual(['dump.bin']);

    const folder = await aio(['download', '/stdout', '-'], { env });
    expect(folder.exitCode).toBe(2);
    expect(folder.stderr).toMatch(/folder/);
    const json = await aio(['download', '/stdout/dump.bin', '-', '--json'], { env });
    expect(json.exitCode).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'BAD_REQUEST' } });

    // The stored blob rots: the bytes still come out, and the command fails after them.
    const stored = path.join(dataDir, 'storage', 'blobs', sha(bytes).slice(0, 2), sha(bytes));
    const rotten = Buffer.from(bytes);
    rotten[1000] = (rotten[1000] as number) ^ 0xff;
    await fs.writeFile(stored, rotten);
    const bad = await aioBytes(['download', '/stdout/dump.bin', '-'], { env });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/sha256/);
    expect(bad.stdout.length).toBe(bytes.length);
    await fs.writeFile(stored, bytes);
  }, 60_000);

  it('uploads a folder as REMOTE/NAME, and only its contents when named with a trailing slash', async () => {
    const work = await tempDir('aio-cli-slash-');
    await fs.mkdir(path.join(work, 'site', 'css'), { recursive: true });
    await fs.writeFile(path.join(work, 'site', 'index.html'), '<p>hi</p>');
    await fs.writeFile(path.join(work, 'site', 'css', 'a.css'), 'p{}');
    const named = await aio(['upload', '-r', path.join(work, 'site'), '/named', '--json'], { env });
    expect(named.exitCode, named.stderr).toBe(0);
    const contents = await aio(['upload', '-r', `${path.join(work, 'site')}/`, '/contents', '--json'], {
      env,
    });
    expect(contents.exitCode, contents.stderr).toBe(0);
    const paths = async (root: string): Promise<string[]> => {
      const ls = await aio(['ls', '-R', root, '--json'], { env });
      expect(ls.exitCode, ls.stderr).toBe(0);
      return (JSON.parse(ls.stdout) as Array<{ kind: string; path: string }>)
        .filter((e) => e.kind === 'file')
        .map((e) => e.path)
        .sort();
    };
    expect(await paths('/named')).toEqual(['/named/site/css/a.css', '/named/site/index.html']);
    expect(await paths('/contents')).toEqual(['/contents/css/a.css', '/contents/index.html']);
  }, 60_000);

  it('restores an old version with `restore PATH --version N`, while `aio --version` prints its own', async () => {
    const work = await tempDir('aio-cli-versions-');
    const file = path.join(work, 'notes.txt');
    await fs.writeFile(file, 'first');
    expect((await aio(['upload', file, '/versions/notes.txt'], { env })).exitCode).toBe(0);
    await fs.writeFile(file, 'second');
    expect((await aio(['upload', file, '/versions/notes.txt'], { env })).exitCode).toBe(0);

    const restored = await aio(['restore', '/versions/notes.txt', '--version', '1'], { env });
    expect(restored.exitCode, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/version 1 \(now version 3\)/);
    expect((await aioBytes(['download', '/versions/notes.txt', '-'], { env })).stdout.toString()).toBe(
      'first',
    );
    const missing = await aio(['restore', '/versions/notes.txt', '--version', '9'], { env });
    expect(missing.exitCode).toBe(4);

    for (const args of [['--version'], ['-V'], ['--server', server.url, '--version']]) {
      const version = await aio(args, { env });
      expect(version.exitCode, args.join(' ')).toBe(0);
      expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    }
  }, 60_000);

  it('moves, copies, trashes, restores and purges through the real commands', async () => {
    const work = await tempDir('aio-cli-tree-');
    await fs.writeFile(path.join(work, 'a.txt'), 'alpha');
    expect((await aio(['upload', path.join(work, 'a.txt'), '/tree/docs/a.txt'], { env })).exitCode).toBe(0);
    const names = async (folder: string): Promise<string[]> => {
      const ls = await aio(['ls', folder, '--json'], { env });
      expect(ls.exitCode, ls.stderr).toBe(0);
      return (JSON.parse(ls.stdout) as Array<{ name: string }>).map((e) => e.name).sort();
    };

    expect((await aio(['mv', '/tree/docs/a.txt', '/tree/docs/b.txt'], { env })).exitCode).toBe(0);
    expect((await aio(['cp', '/tree/docs', '/tree/copy'], { env })).exitCode).toBe(0);
    expect(await names('/tree')).toEqual(['copy', 'docs']);
    expect(await names('/tree/copy')).toEqual(['b.txt']);
    const intoItself = await aio(['mv', '/tree/docs', '/tree/docs/inner'], { env });
    expect(intoItself.exitCode).toBe(5);

    const folderWithoutR = await aio(['rm', '/tree/copy'], { env });
    expect(folderWithoutR.exitCode).toBe(2);
    expect((await aio(['rm', '-r', '/tree/copy'], { env })).exitCode).toBe(0);
    const root = await aio(['rm', '/'], { env });
    expect(root.exitCode).toBe(2);
    expect(root.stderr).toMatch(/root folder cannot be deleted/);
    // Like rm(1): a path that cannot go is reported, the others still go (exit 8: partial).
    const some = await aio(['rm', '/tree/docs/missing.txt', '/tree/docs/b.txt'], { env });
    expect(some.exitCode).toBe(8);
    expect(some.stderr).toMatch(/^error: \/tree\/docs\/missing\.txt: /m);
    expect(some.stdout).toMatch(/Moved \/tree\/docs\/b\.txt to the trash/);
    expect(await names('/tree')).toEqual(['docs']);
    expect(await names('/tree/docs')).toEqual([]);

    const trash = await aio(['trash', 'ls', '--json'], { env });
    expect(trash.exitCode, trash.stderr).toBe(0);
    const trashed = JSON.parse(trash.stdout) as Array<{ id: string; path: string }>;
    const copy = trashed.find((t) => t.path === '/tree/copy');
    const file = trashed.find((t) => t.path === '/tree/docs/b.txt');
    expect(copy && file).toBeTruthy();
    expect((await aio(['trash', 'restore', file?.id ?? ''], { env })).exitCode).toBe(0);
    expect(await names('/tree/docs')).toEqual(['b.txt']);
    expect((await aio(['trash', 'purge', copy?.id ?? ''], { env })).exitCode).toBe(0);
    expect((await aio(['trash', 'purge', copy?.id ?? ''], { env })).exitCode).toBe(4);
    const left = JSON.parse((await aio(['trash', 'ls', '--json'], { env })).stdout) as Array<{
      path: string;
    }>;
    expect(left.map((t) => t.path)).not.toContain('/tree/copy');

    const versions = await aio(['versions', '/tree/docs/b.txt', '--json'], { env });
    expect(versions.exitCode, versions.stderr).toBe(0);
    expect(versions.stdout).toContain(sha(Buffer.from('alpha')));

    // A second session of the same account ends without touching the first.
    const other = { ...env, AIO_CONFIG_DIR: await tempDir('aio-cli-logout-') };
    const login = await aio(['login', '--email', 'ada@example.test', '--password-stdin'], {
      env: other,
      input: `${PASSWORD}\n`,
    });
    expect(login.exitCode, login.stderr).toBe(0);
    expect((await aio(['logout'], { env: other })).exitCode).toBe(0);
    const after = await aio(['ls', '/tree'], { env: other });
    expect(after.exitCode).toBe(3);
    expect(after.stderr).toMatch(/aio login/);
    expect((await aio(['ls', '/tree'], { env })).exitCode).toBe(0);
  }, 60_000);

  it('sends one of two local names that differ only in case, and a case-only rename is not a delete', async () => {
    const work = await tempDir('aio-cli-case-');
    const tree = path.join(work, 'tree');
    await fs.mkdir(tree);
    await fs.writeFile(path.join(tree, 'Notes.txt'), 'upper');
    await fs.writeFile(path.join(tree, 'notes.txt'), 'lower');
    await fs.writeFile(path.join(tree, 'Report.txt'), 'report');
    const remoteOf = async (root: string): Promise<Array<[string, string | null]>> => {
      const ls = await aio(['ls', '-R', root, '--json'], { env });
      expect(ls.exitCode, ls.stderr).toBe(0);
      return (JSON.parse(ls.stdout) as Array<{ kind: string; path: string; sha256: string | null }>)
        .filter((e) => e.kind === 'file')
        .map((e): [string, string | null] => [e.path, e.sha256])
        .sort();
    };

    for (let run = 0; run < 2; run++) {
      const synced = await aio(['sync', tree, '/case', '--json'], { env });
      expect(synced.exitCode).toBe(8);
      expect(synced.stderr).toMatch(/notes\.txt: not sent: the server takes it for Notes\.txt/);
      const summary = synced.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event?: string; refused?: unknown[] })
        .find((d) => d.event === 'summary');
      expect(summary?.refused).toHaveLength(1);
    }
    expect(await remoteOf('/case')).toEqual([
      ['/case/Notes.txt', sha(Buffer.from('upper'))],
      ['/case/Report.txt', sha(Buffer.from('report'))],
    ]);

    const uploaded = await aio(['upload', '-r', `${tree}/`, '/case-upload'], { env });
    expect(uploaded.exitCode).toBe(8);
    expect((await remoteOf('/case-upload')).map(([p, h]) => [p, h])).toEqual([
      ['/case-upload/Notes.txt', sha(Buffer.from('upper'))],
      ['/case-upload/Report.txt', sha(Buffer.from('report'))],
    ]);

    // Renamed in case only: the same remote file, never deleted for it; an edit lands on it.
    await fs.rm(path.join(tree, 'notes.txt'));
    await fs.rename(path.join(tree, 'Report.txt'), path.join(tree, 'report.txt'));
    const renamed = await aio(['sync', tree, '/case', '--delete', '--json'], { env });
    expect(renamed.exitCode, renamed.stderr).toBe(0);
    expect(lastJson<{ uploaded: number; deleted: number }>(renamed.stdout)).toMatchObject({
      uploaded: 0,
      deleted: 0,
    });
    await fs.writeFile(path.join(tree, 'report.txt'), 'report, edited');
    const edited = await aio(['sync', tree, '/case', '--delete', '--json'], { env });
    expect(edited.exitCode, edited.stderr).toBe(0);
    expect(await remoteOf('/case')).toEqual([
      ['/case/Notes.txt', sha(Buffer.from('upper'))],
      ['/case/Report.txt', sha(Buffer.from('report, edited'))],
    ]);
  }, 60_000);

  it('says when mkdir -p found its folder there, and prints a local name with control characters on one line', async () => {
    const made = await aio(['mkdir', '-p', '/again/deeper', '--json'], { env });
    expect(made.exitCode, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ path: '/again/deeper', kind: 'folder', created: true });
    const again = await aio(['mkdir', '-p', '/again/deeper'], { env });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toBe('Already there: /again/deeper/');
    const json = await aio(['mkdir', '-p', '/again', '--json'], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({ path: '/again', created: false });

    // A Linux name may hold a newline or an escape; the server refuses it, and the line
    // that says so is one line without the raw byte (a terminal would act on \x1b).
    const tree = await tempDir('aio-cli-control-');
    await fs.writeFile(path.join(tree, 'two\nlines.txt'), 'a');
    await fs.writeFile(path.join(tree, 'esc\x1b[2J.txt'), 'b');
    await fs.writeFile(path.join(tree, 'fine.txt'), 'c');
    const synced = await aio(['sync', tree, '/control'], { env });
    expect(synced.exitCode).toBe(8);
    const lines = synced.stderr.split('\n').filter((l) => l.startsWith('error: /control/'));
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.startsWith('error: /control/two\\nlines.txt: '))).toBe(true);
    expect(lines.some((l) => l.startsWith('error: /control/esc\\x1b[2J.txt: '))).toBe(true);
    expect(synced.stderr).not.toContain('\x1b');
    const listed = await aio(['ls', '/control', '--json'], { env });
    expect((JSON.parse(listed.stdout) as Array<{ name: string }>).map((e) => e.name)).toEqual(['fine.txt']);
    const uploaded = await aio(['upload', '-r', `${tree}/`, '/control-up'], { env });
    expect(uploaded.exitCode).toBe(8);
    expect(uploaded.stderr).toContain(`error: ${path.join(tree, 'two\\nlines.txt')}: `);
    expect(uploaded.stderr).toContain(`error: ${path.join(tree, 'esc\\x1b[2J.txt')}: `);
    expect(uploaded.stderr).not.toContain('\x1b');
  }, 60_000);

  it('sync --delete replaces a remote file by a local folder of its name, and a remote folder by a local file, in one run', async () => {
    const tree = await tempDir('aio-cli-kinds-');
    await fs.mkdir(path.join(tree, 'was-folder'));
    await fs.writeFile(path.join(tree, 'was-folder', 'in.txt'), 'in');
    await fs.writeFile(path.join(tree, 'was-file'), 'a file');
    await fs.writeFile(path.join(tree, 'stays.txt'), 'stays');
    expect((await aio(['sync', tree, '/kinds'], { env })).exitCode).toBe(0);

    await fs.rm(path.join(tree, 'was-folder'), { recursive: true });
    await fs.writeFile(path.join(tree, 'was-folder'), 'now a file');
    await fs.rm(path.join(tree, 'was-file'));
    await fs.mkdir(path.join(tree, 'was-file', 'deep'), { recursive: true });
    await fs.writeFile(path.join(tree, 'was-file', 'deep', 'x.txt'), 'now in a folder');
    // What stands in the way is deleted like any extra: within the deletion budget.
    const budget = await aio(['sync', tree, '/kinds', '--delete'], { env });
    expect(budget.exitCode).toBe(5);
    expect(budget.stderr).toMatch(/Refusing to delete 2 of 3 remote files/);
    const synced = await aio(['sync', tree, '/kinds', '--delete', '--max-delete', '100%', '--json'], { env });
    expect(synced.exitCode, synced.stderr).toBe(0);
    expect(lastJson<{ uploaded: number; deleted: number }>(synced.stdout)).toMatchObject({
      uploaded: 2,
      deleted: 2,
    });
    const ls = await aio(['ls', '-R', '/kinds', '--json'], { env });
    const entries = (JSON.parse(ls.stdout) as Array<{ kind: string; path: string; sha256: string | null }>)
      .map((e) => [e.path, e.kind === 'file' ? e.sha256 : 'folder'])
      .sort();
    expect(entries).toEqual([
      ['/kinds/stays.txt', sha(Buffer.from('stays'))],
      ['/kinds/was-file', 'folder'],
      ['/kinds/was-file/deep', 'folder'],
      ['/kinds/was-file/deep/x.txt', sha(Buffer.from('now in a folder'))],
      ['/kinds/was-folder', sha(Buffer.from('now a file'))],
    ]);
    // Nothing left to do.
    const again = await aio(['sync', tree, '/kinds', '--delete', '--json'], { env });
    expect(lastJson<{ uploaded: number; deleted: number }>(again.stdout)).toMatchObject({
      uploaded: 0,
      deleted: 0,
    });
  }, 60_000);

  it('ends with the documented exit codes for real failures', async () => {
    const badLogin = await aio(['login', '--email', 'ada@example.test', '--password-stdin'], {
      env: { ...env, AIO_CONFIG_DIR: await tempDir('aio-cli-bad-') },
      input: 'wrong password!',
    });
    expect(badLogin.exitCode).toBe(3);

    const missing = await aio(['ls', '/no/such/folder'], { env });
    expect(missing.exitCode).toBe(4);
    expect(missing.stderr).toMatch(/error:/);

    await aio(['mkdir', '/taken'], { env });
    const conflict = await aio(['mkdir', '/taken'], { env });
    expect(conflict.exitCode).toBe(5);

    const down = await aio(['ls'], {
      env: { ...env, AIO_SERVER: 'http://127.0.0.1:9', AIO_TOKEN: 'aio_unused-because-nothing-answers' },
    });
    expect(down.exitCode).toBe(6);
    expect(down.stderr).toMatch(/Cannot reach http:\/\/127\.0\.0\.1:9/);

    const usage = await aio(['upload', 'only-one-arg'], { env });
    expect(usage.exitCode).toBe(2);
  }, 60_000);
});
