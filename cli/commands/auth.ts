/** `aio register`, `aio login`, `aio logout`, `aio whoami`. */
import { AppError } from '../../contract/errors.js';
import { requireLogin, type CliContext } from '../context.js';
import { formatBytes } from '../output.js';
import { readLine, readPassword } from '../prompt.js';

interface MeResponse {
  id: string;
  email: string;
  name: string | null;
  storageUsed: number;
  storageQuota: number;
  createdAt: string;
}

interface LoginResponse {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  user: MeResponse;
}

export interface CredentialFlags {
  email?: string;
  passwordStdin?: boolean;
  name?: string;
}

async function emailOf(ctx: CliContext, flags: CredentialFlags): Promise<string> {
  if (flags.email) return flags.email;
  const remembered = (await ctx.profiles.get(ctx.profileName)).email;
  if (ctx.interactive) {
    const answer = (await readLine(ctx, remembered ? `Email (${remembered}):` : 'Email:', '--email')).trim();
    if (answer || remembered) return answer || (remembered as string);
  }
  if (remembered) return remembered;
  throw new AppError('BAD_REQUEST', 'Pass --email (no terminal to prompt on).');
}

export async function register(ctx: CliContext, flags: CredentialFlags): Promise<void> {
  const email = await emailOf(ctx, flags);
  const password = await readPassword(ctx, {
    fromStdin: Boolean(flags.passwordStdin),
    message: 'Choose a password (8 to 72 bytes):',
    confirm: !flags.passwordStdin,
  });
  await ctx.anonymous.post(
    '/api/v1/auth/register',
    { email, password, ...(flags.name ? { name: flags.name } : {}) },
    { auth: false },
  );
  await ctx.profiles.update(ctx.profileName, { server: ctx.server, email });
  ctx.out.result({ registered: true, email, server: ctx.server }, () => [
    `Registered ${email} on ${ctx.server}.`,
    'Run `aio login` to start a session.',
  ]);
}

export async function login(ctx: CliContext, flags: CredentialFlags): Promise<void> {
  if (ctx.envToken)
    throw new AppError(
      'BAD_REQUEST',
      'AIO_TOKEN is set: the CLI uses it and stores nothing; unset it to log in.',
    );
  const email = await emailOf(ctx, flags);
  const password = await readPassword(ctx, { fromStdin: Boolean(flags.passwordStdin), message: 'Password:' });
  const res = await ctx.anonymous.post<LoginResponse>(
    '/api/v1/auth/login',
    { email, password },
    { auth: false },
  );
  await ctx.credentials.save({
    server: ctx.server,
    email: res.user.email,
    refreshToken: res.refreshToken,
    accessToken: res.accessToken,
    accessExpiresAt: Date.now() + res.expiresIn * 1000,
  });
  await ctx.profiles.update(ctx.profileName, { server: ctx.server, email: res.user.email });
  ctx.out.result(
    { loggedIn: true, server: ctx.server, user: res.user },
    () => `Logged in to ${ctx.server} as ${res.user.email}.`,
  );
}

export async function logout(ctx: CliContext): Promise<void> {
  if (ctx.envToken)
    throw new AppError(
      'BAD_REQUEST',
      'AIO_TOKEN is set: nothing is stored, so there is nothing to log out of.',
    );
  const session = await ctx.credentials.load();
  if (session) {
    try {
      await ctx.client.post('/api/v1/auth/logout', { refreshToken: session.refreshToken });
    } catch (err) {
      // The local session is removed regardless; say why the server was not told.
      if (!(err instanceof AppError && (err.code === 'INVALID_TOKEN' || err.code === 'UNAUTHENTICATED'))) {
        ctx.out.warn(`the server was not told (${err instanceof Error ? err.message : String(err)})`);
      }
    }
    await ctx.credentials.clear();
  }
  ctx.out.result({ loggedOut: true, server: ctx.server }, () =>
    session ? `Logged out of ${ctx.server}.` : `Not logged in to ${ctx.server}.`,
  );
}

export async function whoami(ctx: CliContext): Promise<void> {
  await requireLogin(ctx);
  const me = await ctx.client.get<MeResponse>('/api/v1/auth/me');
  ctx.out.result({ server: ctx.server, ...me }, () => [
    `${me.email}${me.name ? ` (${me.name})` : ''} on ${ctx.server}`,
    `storage: ${formatBytes(me.storageUsed)} of ${formatBytes(me.storageQuota)}`,
  ]);
}
