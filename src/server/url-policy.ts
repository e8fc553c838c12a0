/**
 * Which hosts a start request may point the runner's trickle channels at (issue 17: without this,
 * anyone who can reach the control port can make the runner GET any URL — cloud metadata included —
 * and POST the answer to a channel they own).
 *
 * Promises, for every channel URL of a start (subscribe/publish/data/control/events):
 * - with an allowlist, the host (or host:port) must be on it; `*` on the list means any host;
 * - link-local and cloud-metadata targets (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200,
 *   metadata.google.internal, …) are refused unless that exact host is listed — checked on the name
 *   and on every address the name resolves to (DNS), so a name pointing at 169.254.169.254 is refused too;
 * - a refusal is a 400 naming the field. The query/fragment rule lives in requests.ts (syntax).
 * Limit, by design: the check runs at start; a DNS answer that changes later (rebinding) is not seen.
 * The allowlist is the defence against that — in BYOC mode it defaults to the orchestrator's host.
 * TRICKLE_ALLOWED_HOSTS is parsed by the configuration schema (src/config/runtime.ts).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { BadRequestError } from '../errors.js';

export type HostLookup = (hostname: string) => Promise<string[]>;

export interface TrickleUrlPolicy {
  /** Lower-case `host` or `host:port` entries; `*` allows any host. Undefined = any host (open). */
  allowedHosts?: string[];
  /** DNS resolution (injectable for tests); default: the system resolver, all addresses. */
  lookup?: HostLookup;
}

export const CHANNEL_FIELDS = ['subscribe_url', 'publish_url', 'data_url', 'control_url', 'events_url'] as const;
export type ChannelField = (typeof CHANNEL_FIELDS)[number];

const METADATA_NAMES = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.com',
]);

const defaultLookup: HostLookup = async (hostname) => (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

function ipv4Octets(addr: string): number[] | undefined {
  const parts = addr.split('.');
  if (parts.length !== 4) return undefined;
  const n = parts.map((p) => Number(p));
  return n.every((x) => Number.isInteger(x) && x >= 0 && x <= 255) ? n : undefined;
}

/** Expands an IPv6 address into 8 16-bit groups (handles `::` and a trailing dotted IPv4). */
function ipv6Groups(addr: string): number[] | undefined {
  let a = addr.toLowerCase().split('%')[0] ?? '';
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4?.[1]) {
    const o = ipv4Octets(v4[1]);
    if (!o) return undefined;
    a = a.slice(0, -v4[1].length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  if (fill < 0) return undefined;
  const groups = [...h, ...Array<string>(fill).fill('0'), ...t].map((g) => Number.parseInt(g || '0', 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** Link-local or a known cloud-metadata address (the SSRF targets that matter most). */
export function isMetadataAddress(addr: string): boolean {
  const kind = isIP(addr);
  if (kind === 4) {
    const o = ipv4Octets(addr);
    if (!o) return false;
    if (o[0] === 169 && o[1] === 254) return true; // link-local: AWS/GCP/Azure/OCI metadata
    return o.join('.') === '100.100.100.200'; // Alibaba Cloud metadata
  }
  if (kind === 6) {
    const g = ipv6Groups(addr);
    if (!g) return false;
    if ((g[0]! & 0xffc0) === 0xfe80) return true; // fe80::/10
    if (g[0] === 0xfd00 && g[1] === 0x0ec2 && g.slice(2, 7).every((x) => x === 0) && g[7] === 0x254) return true; // AWS IPv6 IMDS
    // IPv4-mapped / -compatible forms of the IPv4 targets.
    if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) {
      return isMetadataAddress(`${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`);
    }
  }
  return false;
}

function hostOf(u: URL): { host: string; hostPort: string } {
  const host = u.hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return { host, hostPort: `${host.includes(':') ? `[${host}]` : host}:${port}` };
}

/** Throws a 400 naming the field when a channel URL is not allowed; resolves otherwise. */
export async function checkChannelUrls(urls: Partial<Record<ChannelField, string | undefined>>, policy: TrickleUrlPolicy): Promise<void> {
  const lookup = policy.lookup ?? defaultLookup;
  const allowed = policy.allowedHosts;
  for (const field of CHANNEL_FIELDS) {
    const raw = urls[field];
    if (!raw) continue;
    const u = new URL(raw);
    const { host, hostPort } = hostOf(u);
    const listed = allowed?.includes(host) || allowed?.includes(hostPort);
    if (allowed && !listed && !allowed.includes('*')) {
      throw new BadRequestError(
        `${field}: host ${hostPort} is not an allowed trickle host (allowed: ${allowed.join(', ')}; set TRICKLE_ALLOWED_HOSTS)`,
        'channel_host_not_allowed',
      );
    }
    if (listed) continue; // an explicit entry is the operator's decision, metadata ranges included
    if (METADATA_NAMES.has(host) || isMetadataAddress(host)) {
      throw new BadRequestError(`${field}: ${host} is a link-local / cloud-metadata address and is refused`, 'channel_host_not_allowed');
    }
    if (isIP(host)) continue;
    let addrs: string[];
    try {
      addrs = await lookup(host);
    } catch (err) {
      throw new BadRequestError(`${field}: cannot resolve host ${host} (${(err as Error).message})`, 'channel_host_unresolvable');
    }
    const bad = addrs.find(isMetadataAddress);
    if (bad) {
      throw new BadRequestError(`${field}: host ${host} resolves to ${bad}, a link-local / cloud-metadata address, and is refused`, 'channel_host_not_allowed');
    }
  }
}
