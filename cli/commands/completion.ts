/** `aio completion bash|zsh|fish`: completion scripts generated from the command tree. */
import type { Command } from 'commander';

interface Node {
  name: string;
  subcommands: string[];
  options: string[];
}

function walk(program: Command): { top: string[]; globals: string[]; nodes: Node[] } {
  const nodes: Node[] = [];
  const visit = (cmd: Command, prefix: string) => {
    for (const sub of cmd.commands) {
      const name = prefix ? `${prefix} ${sub.name()}` : sub.name();
      nodes.push({
        name,
        subcommands: sub.commands.map((c) => c.name()),
        options: sub.options.map((o) => o.long ?? o.short ?? '').filter(Boolean),
      });
      visit(sub, name);
    }
  };
  visit(program, '');
  return {
    top: program.commands.map((c) => c.name()),
    globals: program.options
      .filter((o) => !o.hidden)
      .map((o) => o.long ?? '')
      .filter(Boolean),
    nodes,
  };
}

export function completion(shell: 'bash' | 'zsh' | 'fish', program: Command): string {
  const { top, globals, nodes } = walk(program);
  if (shell === 'fish') {
    const lines = [`complete -c aio -f`];
    for (const name of top) lines.push(`complete -c aio -n '__fish_use_subcommand' -a '${name}'`);
    for (const g of globals) lines.push(`complete -c aio -l '${g.replace(/^--/, '')}'`);
    for (const node of nodes) {
      const parts = node.name.split(' ');
      const cond = `__fish_seen_subcommand_from ${parts[parts.length - 1]}`;
      for (const sub of node.subcommands) lines.push(`complete -c aio -n '${cond}' -a '${sub}'`);
      for (const opt of node.options) {
        if (opt.startsWith('--')) lines.push(`complete -c aio -n '${cond}' -l '${opt.slice(2)}'`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
  const cases = nodes
    .map((n) => `    "${n.name}") words="${[...n.subcommands, ...n.options].join(' ')}" ;;`)
    .join('\n');
  const body = `_aio_complete() {
  local cur path i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) path="\${path:+$path }\${COMP_WORDS[i]}" ;; esac
  done
  local words
  case "$path" in
    "") words="${[...top, ...globals].join(' ')}" ;;
${cases}
    *) words="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
`;
  if (shell === 'bash') return `${body}complete -o default -F _aio_complete aio\n`;
  return `#compdef aio\nautoload -U +X bashcompinit && bashcompinit\n${body}complete -o default -F _aio_complete aio\n`;
}
