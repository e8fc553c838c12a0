/**
 * CPU accounting for benchmarks: this process (all its threads) plus every child it has reaped
 * (cutime/cstime in /proc/self/stat), in seconds. Linux only, as the benchmarks are.
 */
import { readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ

function reapedChildrenCpuS(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  // Fields after ")" start at field 3; cutime is field 16 and cstime field 17.
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[13]) + Number(rest[14])) / TICK;
}

export function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6 + reapedChildrenCpuS();
}
