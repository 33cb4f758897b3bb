/** Reading secrets and answers: from a terminal prompt, or from stdin with `--password-stdin`; never argv. */
import { AppError } from '../contract/errors.js';
import type { CliContext } from './context.js';

export async function readStdin(stream: NodeJS.ReadableStream, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > limit) throw new AppError('BAD_REQUEST', 'Standard input is too long.');
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A password from stdin (first line, trailing newline removed) or a hidden prompt. */
export async function readPassword(
  ctx: CliContext,
  options: { fromStdin: boolean; message: string; confirm?: boolean },
): Promise<string> {
  if (options.fromStdin) {
    const text = await readStdin(ctx.stdin);
    const password = text.replace(/\r?\n$/, '');
    if (!password) throw new AppError('BAD_REQUEST', 'No password on standard input.');
    return password;
  }
  if (!ctx.interactive) {
    throw new AppError('BAD_REQUEST', 'No terminal to prompt on: pass the password with --password-stdin.');
  }
  const { password } = await import('@inquirer/prompts');
  const first = await password({ message: options.message, mask: '*' });
  if (options.confirm) {
    const second = await password({ message: 'Repeat it:', mask: '*' });
    if (first !== second) throw new AppError('BAD_REQUEST', 'The passwords do not match.');
  }
  return first;
}

/** A plain answer from a prompt, or a usage error when there is no terminal. */
export async function readLine(ctx: CliContext, message: string, flagName: string): Promise<string> {
  if (!ctx.interactive) throw new AppError('BAD_REQUEST', `No terminal to prompt on: pass ${flagName}.`);
  const { input } = await import('@inquirer/prompts');
  return input({ message });
}
