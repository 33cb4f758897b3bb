/**
 * Everything a command needs, built once from the global flags and the environment:
 * output, the resolved server and profile, credentials and an authenticated client.
 */
import { ApiClient } from '../contract/client.js';
import { AppError } from '../contract/errors.js';
import { CredentialStore, SessionTokens, staticTokens, type RefreshResponse } from './credentials.js';
import { Output } from './output.js';
import { configDir } from './paths.js';
import { DEFAULT_SERVER, ProfileStore } from './profiles.js';

export interface GlobalOptions {
  server?: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  profile?: string;
}

export interface CliContext {
  out: Output;
  env: NodeJS.ProcessEnv;
  profileName: string;
  profiles: ProfileStore;
  server: string;
  configDir: string;
  credentials: CredentialStore;
  /** True when AIO_TOKEN is set: use it, store nothing, never prompt for a login. */
  envToken: boolean;
  client: ApiClient;
  /** A client without credentials (register, login). */
  anonymous: ApiClient;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  interactive: boolean;
}

export async function createContext(
  options: GlobalOptions,
  env: NodeJS.ProcessEnv = process.env,
  io: { stdin?: NodeJS.ReadableStream & { isTTY?: boolean } } = {},
): Promise<CliContext> {
  const out = new Output({
    json: Boolean(options.json),
    quiet: Boolean(options.quiet),
    progress: options.progress !== false,
  });
  const dir = configDir(env);
  const profileName = options.profile ?? env.AIO_PROFILE ?? 'default';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(profileName))
    throw new AppError('BAD_REQUEST', `Invalid profile name: ${profileName}`);
  const profiles = new ProfileStore(dir);
  const profile = await profiles.get(profileName);
  const server = normaliseServer(options.server ?? env.AIO_SERVER ?? profile.server ?? DEFAULT_SERVER);
  const credentials = new CredentialStore(dir, `${profileName}@${server}`, {
    noKeyring: env.AIO_NO_KEYRING === '1',
    warn: (m) => out.warn(m),
  });
  const anonymous = new ApiClient(server);
  const envToken = Boolean(env.AIO_TOKEN);
  const tokens = env.AIO_TOKEN
    ? staticTokens(env.AIO_TOKEN)
    : new SessionTokens(credentials, (refreshToken) =>
        anonymous.post<RefreshResponse>('/api/v1/auth/refresh', { refreshToken }, { auth: false }),
      );
  const stdin = io.stdin ?? process.stdin;
  return {
    out,
    env,
    profileName,
    profiles,
    server,
    configDir: dir,
    credentials,
    envToken,
    client: new ApiClient(server, tokens),
    anonymous,
    stdin,
    interactive: Boolean(stdin.isTTY) && Boolean(process.stderr.isTTY) && env.CI !== 'true',
  };
}

export function normaliseServer(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('BAD_REQUEST', `Invalid server URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AppError('BAD_REQUEST', `The server URL must start with http:// or https:// (got ${raw}).`);
  }
  if (url.username || url.password)
    throw new AppError('BAD_REQUEST', 'Put no credentials in the server URL.');
  return url.origin + url.pathname.replace(/\/+$/, '');
}

/** Throws a clear "log in first" error when the client has no credentials. */
export async function requireLogin(ctx: CliContext): Promise<void> {
  const headers = await ctx.client.authHeaders();
  if (!headers.authorization) {
    throw new AppError(
      'UNAUTHENTICATED',
      `Not logged in to ${ctx.server}. Run \`aio login\` or set AIO_TOKEN.`,
    );
  }
}
