import { describe, expect, it } from 'vitest';
import { validateName } from '../core/domain/names.js';
import { refusedName } from './local-tree.js';

/** What the server says of `name`: null when it takes it, else its reason. */
function serverVerdict(name: string): string | null {
  try {
    validateName(name);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

describe('refusedName', () => {
  it('agrees with the server on every printable ASCII name of up to three characters, and on the edges', () => {
    const chars = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));
    const names: string[] = [...chars];
    for (const a of chars) for (const b of chars) names.push(a + b);
    for (const a of '. /\\x') for (const b of chars) for (const c of '. /\\x') names.push(a + b + c);
    names.push('x'.repeat(255), 'x'.repeat(256), 'é'.repeat(127), 'é'.repeat(128), 'tab\tname', 'new\nline');
    names.push('ＡＢ', 'a／b', '．．', 'café', 'e\u0301', ' lead', 'trail ', '\u00a0nbsp', 'ok name.txt');
    for (const name of names) expect(refusedName(name), JSON.stringify(name)).toBe(serverVerdict(name));
  });
});
