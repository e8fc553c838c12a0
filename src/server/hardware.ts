/**
 * GPU facts for /hardware/info and /hardware/stats, read from `nvidia-smi` when it exists (the
 * in-process backend can use CUDA; a remote engine's GPUs are not ours to report). No GPU, no
 * nvidia-smi, or a failing one → empty maps, as PyTrickle answers without NVML.
 */
import { execFile } from 'node:child_process';

export interface GpuInfo {
  id: string;
  name: string;
  memory_total: number;
  memory_free: number;
  major?: number;
  minor?: number;
  utilization_compute?: number;
  utilization_memory?: number;
}

function query(fields: string[]): Promise<string[][]> {
  return new Promise((resolve) => {
    execFile(
      'nvidia-smi',
      [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'],
      { timeout: 3000 },
      (err, stdout) => {
        if (err) return resolve([]);
        resolve(
          stdout
            .trim()
            .split('\n')
            .filter((l) => l.trim() !== '')
            .map((l) => l.split(',').map((s) => s.trim())),
        );
      },
    );
  });
}

const MIB = 1024 * 1024;

export async function gpuInfo(): Promise<Record<string, GpuInfo>> {
  const rows = await query(['index', 'name', 'memory.total', 'memory.free', 'compute_cap']);
  const out: Record<string, GpuInfo> = {};
  for (const [index = '', name = '', total = '0', free = '0', cap = ''] of rows) {
    const [major, minor] = cap.split('.').map((n) => Number.parseInt(n, 10));
    out[index] = { id: index, name, memory_total: Number(total) * MIB, memory_free: Number(free) * MIB, major, minor };
  }
  return out;
}

export async function gpuStats(): Promise<Record<string, GpuInfo>> {
  const rows = await query(['index', 'name', 'memory.total', 'memory.free', 'utilization.gpu', 'utilization.memory']);
  const out: Record<string, GpuInfo> = {};
  for (const [index = '', name = '', total = '0', free = '0', ug = '0', um = '0'] of rows) {
    out[index] = {
      id: index,
      name,
      memory_total: Number(total) * MIB,
      memory_free: Number(free) * MIB,
      utilization_compute: Number(ug),
      utilization_memory: Number(um),
    };
  }
  return out;
}
