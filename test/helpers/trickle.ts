/**
 * Test helpers for the trickle area: a server on an ephemeral loopback port, raw HTTP requests that
 * observe exactly what goes over the wire (interim 1xx, when headers arrive, chunk by chunk), and
 * FaultyServer, a scripted HTTP server used only for fault injection against the clients.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { TrickleServer, type TrickleServerOptions } from '../../src/trickle/server.js';

export async function startTrickleServer(opts: TrickleServerOptions = {}): Promise<TrickleServer> {
  const server = new TrickleServer({ host: '127.0.0.1', port: 0, ...opts });
  await server.listen();
  return server;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection; resolves with the whole (small) response. */
export function rawRequest(
  method: string,
  url: string,
  opts: { headers?: http.OutgoingHttpHeaders; body?: string | Buffer } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: opts.headers });
    req.on('error', reject);
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() }));
      res.on('error', reject);
    });
    req.end(opts.body);
  });
}

/** A streaming POST kept open until end(); counts interim 1xx responses. */
export class RawPost {
  readonly req: http.ClientRequest;
  interim = 0;
  readonly response: Promise<RawResponse>;

  constructor(url: string, headers: http.OutgoingHttpHeaders = {}) {
    this.req = http.request(url, { method: 'POST', agent: false, headers: { 'Transfer-Encoding': 'chunked', ...headers } });
    this.req.on('information', () => (this.interim += 1));
    this.response = new Promise((resolve, reject) => {
      this.req.on('error', reject);
      this.req.on('response', (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() }));
      });
    });
    this.response.catch(() => undefined);
    this.req.flushHeaders();
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.req.write(data, (err) => (err ? reject(err) : resolve())));
  }

  end(data?: string): Promise<RawResponse> {
    this.req.end(data);
    return this.response;
  }

  destroy(): void {
    this.req.destroy();
  }
}

/** A GET whose response headers and body chunks are observed as they arrive. */
export class RawGet {
  readonly req: http.ClientRequest;
  res: http.IncomingMessage | undefined;
  readonly chunks: Buffer[] = [];
  readonly headersArrived: Promise<http.IncomingMessage>;
  readonly done: Promise<RawResponse>;
  private chunkWaiters: Array<() => void> = [];

  constructor(url: string) {
    this.req = http.request(url, { method: 'GET', agent: false });
    this.headersArrived = new Promise((resolve, reject) => {
      this.req.on('error', reject);
      this.req.on('response', (res) => {
        this.res = res;
        resolve(res);
      });
    });
    this.done = this.headersArrived.then(
      (res) =>
        new Promise<RawResponse>((resolve, reject) => {
          res.on('data', (c: Buffer) => {
            this.chunks.push(c);
            for (const w of this.chunkWaiters.splice(0)) w();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: this.text }));
          res.on('error', reject);
        }),
    );
    this.done.catch(() => undefined);
    this.req.end();
  }

  get responded(): boolean {
    return this.res !== undefined;
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }

  /** Resolves once at least `n` bytes have arrived. */
  async waitBytes(n: number, timeoutMs = 2000): Promise<void> {
    await until(() => Buffer.concat(this.chunks).length >= n, timeoutMs);
  }

  destroy(): void {
    this.req.destroy();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `pred` every 5 ms; rejects after timeoutMs. */
export async function until(pred: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

export interface RecordedRequest {
  method: string;
  url: string;
  at: number;
  headers: http.IncomingHttpHeaders;
}

/**
 * Fault injection double: every request is recorded and answered by the scripted handler (which may
 * also hang, cut the connection, etc.).
 */
export class FaultyServer {
  readonly requests: RecordedRequest[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<import('node:net').Socket>();

  constructor(handler: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void) {
    this.server = http.createServer({ requestTimeout: 0 }, (req, res) => {
      this.requests.push({ method: req.method ?? '', url: req.url ?? '', at: Date.now(), headers: req.headers });
      handler(req, res, this.requests.length);
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Cuts every open connection (the "server gone" fault). */
  cutConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cutConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A self-signed certificate for 127.0.0.1, made by openssl (as orchestrators often serve); its files are removed. */
export async function selfSignedCert(): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'trickle-tls-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  await new Promise<void>((resolve, reject) =>
    execFile(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      (err, _out, stderr) => (err ? reject(new Error(`openssl: ${stderr}`)) : resolve()),
    ),
  );
  try {
    return { key: await readFile(key), cert: await readFile(cert) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
