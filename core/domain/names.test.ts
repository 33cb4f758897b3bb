import { describe, it, expect } from 'vitest';
import { AppError } from '../../contract/errors.js';
import { ancestorsOf, nameKey, pathKey, splitPath, validateName } from './names.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? err.code : 'not-an-app-error';
  }
  return undefined;
}

describe('validateName', () => {
  it('returns ordinary names unchanged', () => {
    expect(validateName('report 2026.pdf')).toBe('report 2026.pdf');
    expect(validateName('.hidden')).toBe('.hidden');
    expect(validateName('...')).toBe('...');
  });

  it('returns the NFC form of a decomposed name', () => {
    const decomposed = 'Cafe\u0301';
    expect(validateName(decomposed)).toBe('Caf\u00e9');
  });

  it('refuses an empty name', () => {
    expect(codeOf(() => validateName(''))).toBe('INVALID_NAME');
  });

  it.each(['a/b', 'a\\b', '/', '\\'])('refuses the separator in %j', (name) => {
    expect(codeOf(() => validateName(name))).toBe('INVALID_NAME');
  });

  it.each(['a\u0000b', 'tab\there', 'line\nbreak', 'del\u007f', 'c1\u0085', 'c1\u009f'])(
    'refuses the control character in %j',
    (name) => {
      expect(codeOf(() => validateName(name))).toBe('INVALID_NAME');
    },
  );

  it.each(['.', '..'])('refuses the dot name %j', (name) => {
    expect(codeOf(() => validateName(name))).toBe('INVALID_NAME');
  });

  it.each(['\uff0e\uff0e\uff0fx', '\uff0f', '\uff3c', '\uff0e', '\uff0e\uff0e', 'a\uff0fb', '\u2024\u2024'])(
    'refuses %j, which compatibility normalisation turns into a separator or dot name',
    (name) => {
      expect(codeOf(() => validateName(name))).toBe('INVALID_NAME');
    },
  );

  it.each([' lead', 'trail ', '\u3000ideographic', 'nbsp\u00a0'])(
    'refuses the surrounding whitespace in %j',
    (name) => {
      expect(codeOf(() => validateName(name))).toBe('INVALID_NAME');
    },
  );

  it('accepts a name of exactly 255 UTF-8 bytes and refuses 256', () => {
    expect(validateName('a'.repeat(255))).toHaveLength(255);
    expect(codeOf(() => validateName('a'.repeat(256)))).toBe('INVALID_NAME');
    // "é" is two bytes in UTF-8: 128 of them are 256 bytes although only 128 characters.
    expect(codeOf(() => validateName('\u00e9'.repeat(128)))).toBe('INVALID_NAME');
    expect(validateName('\u00e9'.repeat(127))).toHaveLength(127);
  });

  it('counts the bytes of the normalised form', () => {
    // 85 decomposed "é" (3 bytes each) become 85 composed ones (2 bytes each): 170 bytes.
    expect(validateName('e\u0301'.repeat(85))).toBe('\u00e9'.repeat(85));
  });
});

describe('nameKey', () => {
  it('gives names that differ only by case the same key', () => {
    expect(nameKey('Report.PDF')).toBe(nameKey('report.pdf'));
    expect(nameKey('ÄRGER')).toBe(nameKey('ärger'));
  });

  it('folds sharp s and SS together', () => {
    expect(nameKey('Straße')).toBe(nameKey('STRASSE'));
  });

  it('gives composed and decomposed forms the same key', () => {
    expect(nameKey('Cafe\u0301')).toBe(nameKey('CAF\u00c9'));
  });

  it('keeps different names apart', () => {
    expect(nameKey('a.txt')).not.toBe(nameKey('b.txt'));
  });

  it('gives ASCII names (its shortcut) the keys the full Unicode fold gives, as stored keys were made', () => {
    const fullFold = (name: string): string =>
      name.normalize('NFC').toLocaleUpperCase('und').toLocaleLowerCase('und').normalize('NFC');
    const ascii = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c)).join('');
    for (const name of [ascii, 'Report.PDF', 'IMG_0001.JPG', 'a~b-C_d e(1).tar.gz', 'İ.txt', 'ﬁle.txt'])
      expect(nameKey(name)).toBe(fullFold(name));
  });
});

describe('splitPath', () => {
  it('splits an absolute path into validated segments', () => {
    expect(splitPath('/a/b/c')).toEqual(['a', 'b', 'c']);
  });

  it('tolerates a missing leading and a trailing slash', () => {
    expect(splitPath('a/b/')).toEqual(['a', 'b']);
    expect(splitPath('/a/b/')).toEqual(['a', 'b']);
  });

  it('returns no segments for the root', () => {
    expect(splitPath('/')).toEqual([]);
  });

  it('normalises each segment to NFC', () => {
    expect(splitPath('/Cafe\u0301/x')).toEqual(['Caf\u00e9', 'x']);
  });

  it.each(['', 'a//b', '//', '/a/../b', '/./a', '/a/\uff0e\uff0e/b', 'a/b\u0000'])('refuses %j', (path) => {
    expect(codeOf(() => splitPath(path))).toBe('INVALID_PATH');
  });

  it('keeps the name error as the cause', () => {
    try {
      splitPath('/a/..');
      expect.unreachable('splitPath accepted ..');
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).cause).toBeInstanceOf(AppError);
      expect(((err as AppError).cause as AppError).code).toBe('INVALID_NAME');
    }
  });
});

describe('pathKey', () => {
  it('keys a path name by name, the ASCII shortcut included', () => {
    for (const p of ['Docs/Notes.TXT', 'a/b/c', 'Straße/Ünïcode.md', 'mixed/ÉTÉ/x.TXT', '', 'ß/SS']) {
      expect(pathKey(p)).toBe(p.split('/').map(nameKey).join('/'));
    }
    expect(pathKey('Docs/Notes.TXT')).toBe(pathKey('docs/notes.txt'));
    expect(pathKey('Straße/x')).toBe(pathKey('STRASSE/X'));
  });
});

describe('ancestorsOf', () => {
  it('lists the folders above a relative path, nearest first', () => {
    expect(ancestorsOf('a/b/c.txt')).toEqual(['a/b', 'a']);
    expect(ancestorsOf('top.txt')).toEqual([]);
    expect(ancestorsOf('')).toEqual([]);
  });
});
