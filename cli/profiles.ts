/**
 * `config.json` in the config dir: named profiles, each remembering its server and the
 * email last logged in. `--profile NAME` picks one; `default` otherwise.
 */
import path from 'node:path';
import { ensurePrivateDir, readJsonFile, writeFileAtomic } from './paths.js';

export interface Profile {
  server?: string;
  email?: string;
}

interface ConfigFile {
  profiles: Record<string, Profile>;
}

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export class ProfileStore {
  private readonly file: string;
  constructor(private readonly dir: string) {
    this.file = path.join(dir, 'config.json');
  }

  async get(name: string): Promise<Profile> {
    const data = await readJsonFile<ConfigFile>(this.file);
    return data?.profiles?.[name] ?? {};
  }

  async update(name: string, patch: Profile): Promise<void> {
    await ensurePrivateDir(this.dir);
    const data = (await readJsonFile<ConfigFile>(this.file)) ?? { profiles: {} };
    data.profiles ??= {};
    data.profiles[name] = { ...data.profiles[name], ...patch };
    await writeFileAtomic(this.file, `${JSON.stringify(data, null, 2)}\n`);
  }
}
