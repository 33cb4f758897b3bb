import { describe, expect, it } from 'vitest';
import { conflictedCopyName, conflictedCopyPath } from './conflicts.js';

const at = new Date(2026, 0, 2, 3, 4, 5);

describe('conflicted copies', () => {
  it('puts the date, time and host before the extension', () => {
    expect(conflictedCopyName('report.pdf', at, 'laptop')).toBe(
      'report (conflicted copy 2026-01-02 030405 laptop).pdf',
    );
  });

  it('treats a leading dot as part of the name and keeps the folder', () => {
    expect(conflictedCopyName('.bashrc', at, 'pc')).toBe('.bashrc (conflicted copy 2026-01-02 030405 pc)');
    expect(conflictedCopyPath('a/b/notes.tar.gz', at, 'my host')).toBe(
      'a/b/notes.tar (conflicted copy 2026-01-02 030405 my-host).gz',
    );
  });
});
