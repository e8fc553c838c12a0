/**
 * Transport shared by the trickle clients: node:http / node:https with a per-client agent (so TLS
 * verification is a per-client choice — orchestrators often use self-signed certificates — and
 * close() can tear down exactly this client's sockets), plus a small request helper for the short
 * control calls (`GET {ch}/next`, `DELETE`). Segment traffic streams and does not go through `simple()`.
 */
import http from 'node:http';
import https from 'node:https';
import { TrickleError, asTrickleError } from './errors.js';

export class Transport {
  private readonly agent: http.Agent;
  private readonly secure: boolean;

  constructor(baseUrl: string, opts: { tlsVerify: boolean; keepAlive: boolean }) {
    this.secure = new URL(baseUrl).protocol === 'https:';
    this.agent = this.secure
      ? new https.Agent({ keepAlive: opts.keepAlive, rejectUnauthorized: opts.tlsVerify })
      : new http.Agent({ keepAlive: opts.keepAlive });
  }

  request(method: string, url: string, headers: http.OutgoingHttpHeaders = {}): http.ClientRequest {
    const mod = this.secure ? https : http;
    const req = mod.request(url, { method, agent: this.agent, headers });
    req.setNoDelay(true);
    return req;
  }

  /** A short request with a small capped body; rejects with TrickleError('trickle_connection') on transport failure or timeout. */
  simple(method: string, url: string, timeoutMs: number): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
      const req = this.request(method, url);
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(asTrickleError(err, `${method} ${url}`));
      });
      req.on('response', (res) => {
        readCapped(res, 4096).then(
          (body) => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          },
          (err: unknown) => {
            clearTimeout(timer);
            reject(asTrickleError(err, `${method} ${url}`));
          },
        );
      });
      req.end();
    });
  }

  destroy(): void {
    this.agent.destroy();
  }
}

/** Reads at most `cap` bytes of a (small, diagnostic) body and discards the rest. */
export function readCapped(res: http.IncomingMessage, cap: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      if (size < cap) parts.push(c.subarray(0, cap - size));
      size += c.length;
    });
    res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    res.on('error', reject);
    res.on('close', () => {
      if (!res.complete) reject(new Error('response cut short'));
    });
  });
}

export function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function intHeader(res: http.IncomingMessage, name: string): number | undefined {
  const v = header(res, name);
  if (v === undefined || !/^-?\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

export function httpStatusError(what: string, status: number, body: string): TrickleError {
  if (status === 404) return new TrickleError('trickle_not_found', `${what}: channel not found (404)`, { status, body });
  return new TrickleError('trickle_http_error', `${what}: HTTP ${status} ${body.trim().slice(0, 200)}`, { status, body });
}

export { delay as sleep, within } from '../util/time.js';

/**
 * Why `raw` cannot be a trickle channel URL, or undefined when it can: http/https only, and no
 * query, fragment or credentials — `/<seq>` is appended to the path, so a `?x=` or `#` would keep it
 * off the real path and turn a client into a fetcher of arbitrary URLs. The one rule: the clients
 * (channelUrl) and the control API's start validation (server/requests.ts) both apply it.
 */
export function channelUrlProblem(raw: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `is not a valid URL (got ${JSON.stringify(raw)})`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `must be an http: or https: URL (got ${u.protocol})`;
  // On the raw text: a bare trailing "?" or "#" parses to an empty search/hash but still matters.
  if (raw.includes('?') || raw.includes('#')) return 'must not contain a query (?) or fragment (#): a trickle channel URL is a plain path';
  if (u.username || u.password) return 'must not contain credentials (user:password@)';
  return undefined;
}

/** A channel URL the clients will use, without trailing slashes; TrickleError('trickle_bad_url') when refused. */
export function channelUrl(raw: string): string {
  const problem = channelUrlProblem(raw);
  if (problem) throw new TrickleError('trickle_bad_url', `channel URL ${JSON.stringify(raw)} ${problem}: refused`);
  return raw.replace(/\/+$/, '');
}

/** Joins a channel URL and a path element without doubling slashes. */
export function joinUrl(base: string, part: string): string {
  return `${base.replace(/\/+$/, '')}/${part}`;
}

