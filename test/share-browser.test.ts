/**
 * A real browser on a real server: headless Chromium (driven by playwright-core) opens
 * a password-protected link, types the password, downloads the file and checks its
 * sha256. Needs /usr/bin/chromium (`apt-get install -y chromium`): under CI=true its
 * absence fails the suite; locally the suite is left out with a message.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp, TestUser } from './helpers/app.js';
import { createLink, putFile, sha256, shareApp, user } from './share-fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '..', 'test-artifacts');

function chromiumPresent(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true')
    throw new Error(`${CHROMIUM} must exist when CI=true (apt-get install -y chromium)`);
  console.warn(`${CHROMIUM} is missing: skipping the browser suite (apt-get install -y chromium)`);
  return false;
}

describe.runIf(chromiumPresent())('a share link in a real browser', () => {
  let t: TestApp;
  let owner: TestUser;
  let server: Server;
  let base: string;
  let profile: string;

  beforeAll(async () => {
    t = await shareApp();
    owner = await user(t);
    server = t.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    profile = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-chromium-'));
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await t?.close();
    if (profile) await fs.rm(profile, { recursive: true, force: true });
  });

  it('opens a password-protected link, takes the password, and downloads the exact bytes', async () => {
    const { chromium } = await import('playwright-core');
    const content = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) % 256));
    await putFile(t, owner, '/Holiday <photos>.bin', content);
    const link = await createLink(t, owner, { path: '/Holiday <photos>.bin', password: 'sunny beach 2026' });

    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      acceptDownloads: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const violations: string[] = [];
      page.on('console', (msg) => {
        if (/Content Security Policy/i.test(msg.text())) violations.push(msg.text());
      });

      const first = await page.goto(`${base}${link.path}`);
      expect(first?.status()).toBe(401);
      expect(await page.textContent('h1')).toContain('protected');
      expect(page.url()).not.toContain('sunny');

      await page.fill('#password', 'sunny beach 2026');
      await Promise.all([page.waitForURL(`${base}${link.path}`), page.click('button[type=submit]')]);
      expect(await page.textContent('h1')).toBe('Holiday <photos>.bin');
      expect(page.url()).not.toContain('sunny');
      const cookies = await context.cookies(`${base}${link.path}`);
      expect(cookies).toEqual([
        expect.objectContaining({ httpOnly: true, sameSite: 'Strict', path: link.path }),
      ]);

      await fs.mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'share-page.png'), fullPage: true });

      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      expect(download.suggestedFilename()).toMatch(/^Holiday .photos.\.bin$/);
      const saved = await download.path();
      expect(sha256(await fs.readFile(saved))).toBe(sha256(content));
      expect(violations).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
