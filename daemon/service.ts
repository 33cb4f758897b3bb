/** The systemd user unit that runs the daemon at login (`aio daemon install-service`). */
import os from 'node:os';
import path from 'node:path';

export const SERVICE_NAME = 'aio-daemon.service';

export function serviceFile(home = os.homedir()): string {
  return path.join(home, '.config', 'systemd', 'user', SERVICE_NAME);
}

const quote = (s: string): string =>
  /^[\w@%+=:,./-]+$/u.test(s) ? s : `"${s.replace(/(["\\$`])/g, '\\$1')}"`;

/** A unit running `node <bin/aio> daemon run` in the foreground; systemd restarts it on failure. */
export function serviceUnit(options: { node: string; script: string; env: Record<string, string> }): string {
  const env = Object.entries(options.env)
    .map(([k, v]) => `Environment=${quote(`${k}=${v}`)}\n`)
    .join('');
  return `[Unit]
Description=AIO Storage sync daemon
After=network-online.target

[Service]
Type=simple
ExecStart=${quote(options.node)} ${quote(options.script)} daemon run
${env}Restart=on-failure
RestartSec=5
KillSignal=SIGTERM
TimeoutStopSec=60

[Install]
WantedBy=default.target
`;
}
