/** Collected samples, the comparison table and docs/benchmarks.md. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as prettier from 'prettier';
import { fmtMiB, fmtMs, median } from './util.js';

export type Unit = 'ms' | 'kb' | 'rps' | 'count' | 'pct';

export interface Comparison {
  workload: string;
  measure: string;
  unit: Unit;
  ours: { tool: string; key: string };
  anchor: { tool: string; key: string } | null;
  /** Target for ours/anchor (lower is better), e.g. 0.5. */
  target?: number;
  /** For rates, higher is better: the ratio is still ours/anchor but the target is a minimum. */
  higherIsBetter?: boolean;
  /** An absolute target for ours (in `unit`), shown as `text`: at most `max`, at least `min`, below `below`. */
  limit?: { max?: number; min?: number; below?: number; text: string };
}

/** An absolute memory limit in decimal megabytes (as the targets are stated), in the table's KiB. */
export function megabytes(mb: number): number {
  return (mb * 1e6) / 1024;
}

export class Results {
  private readonly samples = new Map<string, { unit: Unit; values: number[] }>();
  readonly comparisons: Comparison[] = [];
  readonly notes: string[] = [];
  readonly gaps: string[] = [];

  add(key: string, unit: Unit, value: number | null | undefined): void {
    if (value === null || value === undefined || !Number.isFinite(value)) return;
    const s = this.samples.get(key) ?? { unit, values: [] };
    s.values.push(value);
    this.samples.set(key, s);
  }

  values(key: string): number[] {
    return this.samples.get(key)?.values ?? [];
  }

  med(key: string): number {
    return median(this.values(key));
  }

  compare(c: Comparison): void {
    this.comparisons.push(c);
  }

  note(text: string): void {
    this.notes.push(text);
    console.log(`  note: ${text}`);
  }

  gap(text: string): void {
    this.gaps.push(text);
    console.log(`  GAP: ${text}`);
  }

  format(unit: Unit, v: number): string {
    if (!Number.isFinite(v)) return '—';
    switch (unit) {
      case 'ms':
        return fmtMs(v);
      case 'kb':
        return fmtMiB(v);
      case 'rps':
        return `${Math.round(v).toLocaleString('en-US')} req/s`;
      case 'pct':
        return `${v.toFixed(1)} %`;
      default:
        return String(Math.round(v));
    }
  }

  private cell(key: string, unit: Unit): string {
    const vals = this.values(key);
    if (!vals.length) return '—';
    return `${this.format(unit, median(vals))}${vals.length > 1 ? ` (n=${vals.length})` : ''}`;
  }

  table(): string {
    const lines = [
      '| workload | measure | aio | anchor | anchor value | aio / anchor | target | met |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ];
    for (const c of this.comparisons) {
      const ours = this.med(c.ours.key);
      const anchor = c.anchor ? this.med(c.anchor.key) : Number.NaN;
      const ratio = ours / anchor;
      const ratioText = Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '—';
      let target = '';
      let met = '';
      if (c.limit !== undefined) {
        const { max, min, below, text } = c.limit;
        target = text;
        met = !Number.isFinite(ours)
          ? '?'
          : (max === undefined || ours <= max) &&
              (min === undefined || ours >= min) &&
              (below === undefined || ours < below)
            ? 'yes'
            : '**no**';
      } else if (c.target !== undefined) {
        target = `${c.higherIsBetter ? '≥' : '≤'} ${c.target}×`;
        met = !Number.isFinite(ratio)
          ? '?'
          : (c.higherIsBetter ? ratio >= c.target : ratio <= c.target)
            ? 'yes'
            : '**no**';
      }
      lines.push(
        `| ${c.workload} | ${c.measure} | ${this.cell(c.ours.key, c.unit)} | ${c.anchor?.tool ?? ''} | ${
          c.anchor ? this.cell(c.anchor.key, c.unit) : ''
        } | ${c.anchor ? ratioText : ''} | ${target} | ${met} |`,
      );
    }
    return lines.join('\n');
  }

  raw(): string {
    const lines = [
      '| measurement | tool / detail | median | min | max | samples |',
      '| --- | --- | --- | --- | --- | --- |',
    ];
    for (const [key, s] of [...this.samples.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      // Keys are "measurement | tool": one column each (a `|` inside a cell would add columns).
      const cut = key.indexOf(' | ');
      const [what, detail] = cut < 0 ? [key, ''] : [key.slice(0, cut), key.slice(cut + 3)];
      lines.push(
        `| ${what} | ${detail.replaceAll('|', '\\|')} | ${this.format(s.unit, median(s.values))} | ${this.format(
          s.unit,
          Math.min(...s.values),
        )} | ${this.format(s.unit, Math.max(...s.values))} | ${s.values.length} |`,
      );
    }
    return lines.join('\n');
  }
}

export function machine(): string {
  const mem = os.totalmem() / 2 ** 30;
  return `${os.cpus().length} CPU (${os.cpus()[0]?.model.trim() ?? 'unknown'}; nproc ${os.availableParallelism()}), ${mem.toFixed(1)} GiB RAM, Node ${process.version}, ${os.type()} ${os.release()}`;
}

export async function writeReport(
  file: string,
  results: Results,
  meta: { command: string; versions: Record<string, string>; startedAt: Date; durationMs: number },
): Promise<void> {
  const body = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (scripts/bench/run.ts). Do not edit by hand: run it again.',
    '',
    `- date: ${meta.startedAt.toISOString()} (took ${fmtMs(meta.durationMs)})`,
    `- machine: ${machine()}`,
    `- command: \`${meta.command}\``,
    `- versions: ${Object.entries(meta.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
    'All traffic on 127.0.0.1. Runs of the tools are interleaved (the order rotates every run); each',
    'cell is the median, `n` is the number of runs. Ratios are aio / anchor: below 1 means aio is',
    'faster (or smaller). Every run verifies the result: the sha256 of every file on the receiving',
    'side (for aio: the listing and the content-addressed blob on disk) must match the source.',
    'Before every timed turn the harness runs `sync` (untimed), so that no tool pays for the',
    'writeback of what an earlier one left to the kernel. The machine is shared (2 cores):',
    'expect ±10–20 % noise between runs. Processes start without `NODE_EXTRA_CA_CERTS` (nothing',
    'here speaks TLS; where it names the system bundle, Node parses it at every start, ~50 ms).',
    '',
    '## Results',
    '',
    results.table(),
    '',
    ...(results.notes.length ? ['## Notes', '', ...results.notes.map((n) => `- ${n}`), ''] : []),
    ...(results.gaps.length ? ['## Not measured', '', ...results.gaps.map((n) => `- ${n}`), ''] : []),
    '## Every measurement',
    '',
    results.raw(),
    '',
  ].join('\n');
  await fs.mkdir(path.dirname(file), { recursive: true });
  // Formatted like the rest of the repo, so `prettier --check .` stays clean.
  const options = (await prettier.resolveConfig(file)) ?? {};
  await fs.writeFile(file, await prettier.format(body, { ...options, filepath: file }));
}
