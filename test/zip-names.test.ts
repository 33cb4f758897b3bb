import { describe, expect, it } from 'vitest';
import { ZipEntryNames, zipSegment } from '../worker/jobs/zip-names.js';

describe('zip entry names', () => {
  it('keeps ordinary, dotted, spaced and unicode names as they are, composed (NFC)', () => {
    expect(zipSegment('report.pdf')).toBe('report.pdf');
    expect(zipSegment('.env')).toBe('.env');
    expect(zipSegment('..ab')).toBe('..ab');
    expect(zipSegment('a  b c')).toBe('a  b c');
    expect(zipSegment('Cafe\u0301')).toBe('Caf\u00e9');
  });

  it('turns separators, their compatibility look-alikes and control characters into underscores', () => {
    expect(zipSegment('a/b')).toBe('a_b');
    expect(zipSegment('a\\b')).toBe('a_b');
    expect(zipSegment('a\uff0fb')).toBe('a_b');
    expect(zipSegment('a\uff3cb')).toBe('a_b');
    expect(zipSegment('bell\u0007\u0000')).toBe('bell__');
  });

  it('never yields an empty, . or .. segment, nor one that folds into them', () => {
    expect(zipSegment('')).toBe('_');
    expect(zipSegment('.')).toBe('_.');
    expect(zipSegment('..')).toBe('_..');
    expect(zipSegment('\uff0e\uff0e')).toBe('_\uff0e\uff0e');
  });

  it('defuses a leading drive letter', () => {
    expect(zipSegment('C:')).toBe('C_');
    expect(zipSegment('d:secret')).toBe('d_secret');
    expect(zipSegment('note: C:')).toBe('note: C:');
  });

  it('joins paths with / and numbers names that meet after sanitising or differ only in case', () => {
    const names = new ZipEntryNames();
    const dir = names.claim('', 'docs');
    expect(names.claim(dir, 'a/b.txt')).toBe('docs/a_b.txt');
    expect(names.claim(dir, 'a_b.txt')).toBe('docs/a_b (2).txt');
    expect(names.claim(dir, 'A_B.TXT')).toBe('docs/A_B (3).TXT');
    expect(names.claim(dir, '.env')).toBe('docs/.env');
    expect(names.claim('', 'DOCS')).toBe('DOCS (2)');
  });
});
