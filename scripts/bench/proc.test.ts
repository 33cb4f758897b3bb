import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diskBusyMs, diskOf, runTimed, withDiskBusy } from './proc.js';

describe('bench disk counters', () => {
  const linux = process.platform === 'linux';

  it.runIf(linux)(
    'names the disk under the temp folder, as /proc/diskstats does, and reads its busy time',
    async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aio-bench-disk-'));
      try {
        const disk = diskOf(dir);
        const diskstats = await fs.readFile('/proc/diskstats', 'utf8');
        const names = diskstats.split('\n').map((line) => line.trim().split(/\s+/)[2]);
        if (disk === null) {
          // Only a folder on a file system without a block device (tmpfs, overlay) has none.
          const type = execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim();
          expect(['tmpfs', 'overlayfs', 'ramfs', 'btrfs', 'zfs']).toContain(type);
          return;
        }
        expect(names).toContain(disk);
        const before = diskBusyMs(disk);
        expect(before).toBeGreaterThanOrEqual(0);

        // A durable write makes the disk busy for some of the time; the share is a percentage.
        const { result, busyPct } = await withDiskBusy(disk, async () => {
          const handle = await fs.open(path.join(dir, 'f'), 'w');
          await handle.write(Buffer.alloc(4 * 1024 * 1024, 1));
          await handle.sync();
          await handle.close();
          return 'written';
        });
        expect(result).toBe('written');
        expect(busyPct).not.toBeNull();
        expect(busyPct).toBeGreaterThanOrEqual(0);
        expect(busyPct).toBeLessThanOrEqual(100);
        expect(diskBusyMs(disk)).toBeGreaterThanOrEqual(before as number);
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    },
  );

  it('answers null, not a failure, for a disk it cannot read or a folder that is not there', async () => {
    expect(diskBusyMs('no-such-disk')).toBeNull();
    expect(diskOf(path.join(os.tmpdir(), 'aio-bench-no-such-folder', 'x'))).toBeNull();
    const { result, busyPct } = await withDiskBusy(null, async () => 42);
    expect(result).toBe(42);
    expect(busyPct).toBeNull();
  });
});

describe('bench CPU of a run', () => {
  // runTimed reads the CPU from /usr/bin/time; without it the bench leaves the row out.
  it.runIf(existsSync('/usr/bin/time'))(
    'counts the CPU a command and its children spent, not the time they waited',
    async () => {
      const spin = 'const end = Date.now() + 300; while (Date.now() < end);';
      // The busy loop runs in a child of the command: children count too.
      const busy = await runTimed('busy', process.execPath, [
        '-e',
        `require('node:child_process').execFileSync(process.execPath, ['-e', ${JSON.stringify(spin)}])`,
      ]);
      const idle = await runTimed('idle', 'sleep', ['0.3']);
      expect(busy.cpuMs).toBeGreaterThanOrEqual(250);
      expect(busy.cpuMs).toBeLessThanOrEqual(busy.ms + 100);
      expect(idle.cpuMs).not.toBeNull();
      expect(idle.cpuMs).toBeLessThan(100);
      expect(idle.ms).toBeGreaterThanOrEqual(290);
    },
  );
});
