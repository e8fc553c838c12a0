/**
 * Livepeer BYOC capability registration: when ORCH_URL and ORCH_SECRET are set, the runner announces
 * itself to the orchestrator (`POST {ORCH_URL}/capability/register`, the secret as the Authorization
 * header), as PyTrickle's RegisterCapability does, retrying while the orchestrator is not up yet.
 * Orchestrators commonly use self-signed certificates, so TLS verification follows ORCH_TLS_VERIFY
 * (default off, like PyTrickle).
 */
import { Agent } from 'node:https';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../log.js';
import { AppError, errorMessage } from '../errors.js';

export interface CapabilityRegistration {
  orchUrl: string;
  orchSecret: string;
  name: string;
  description: string;
  url: string;
  capacity: number;
  pricePerUnit: number;
  priceScaling: number;
  tlsVerify: boolean;
}

export function registrationFromEnv(env: NodeJS.ProcessEnv, port: number): CapabilityRegistration | undefined {
  if (!env.ORCH_URL || !env.ORCH_SECRET) return undefined;
  return {
    orchUrl: env.ORCH_URL.replace(/\/+$/, ''),
    orchSecret: env.ORCH_SECRET,
    name: env.CAPABILITY_NAME || 'gemma3n-trickle',
    description: env.CAPABILITY_DESCRIPTION || 'Gemma 3n live stream description (gemma3n-trickle)',
    url: env.CAPABILITY_URL || `http://localhost:${port}`,
    capacity: Number(env.CAPABILITY_CAPACITY ?? 1),
    pricePerUnit: Number(env.CAPABILITY_PRICE_PER_UNIT ?? 0),
    priceScaling: Number(env.CAPABILITY_PRICE_SCALING ?? 1),
    tlsVerify: /^(1|true|yes)$/i.test(env.ORCH_TLS_VERIFY ?? ''),
  };
}

function postOnce(reg: CapabilityRegistration, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  const target = new URL(`${reg.orchUrl}/capability/register`);
  const isHttps = target.protocol === 'https:';
  const send = isHttps ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: 'POST',
        headers: { authorization: reg.orchSecret, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
        ...(isHttps ? { agent: new Agent({ rejectUnauthorized: reg.tlsVerify }) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Registers, retrying up to `attempts` times `delayMs` apart. A 400 means a wrong secret and is final.
 * Resolves when registered; rejects with code 'capability_registration_failed' otherwise.
 */
export async function registerCapability(
  reg: CapabilityRegistration,
  log: Logger,
  opts: { attempts?: number; delayMs?: number; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const attempts = opts.attempts ?? 10;
  const body = JSON.stringify({
    url: reg.url,
    name: reg.name,
    description: reg.description,
    capacity: reg.capacity,
    price_per_unit: reg.pricePerUnit,
    price_scaling: reg.priceScaling,
  });
  let last = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (opts.signal?.aborted) break;
    try {
      const res = await postOnce(reg, body, opts.timeoutMs ?? 5000);
      if (res.status === 200) {
        log.info({ orch_url: reg.orchUrl, capability: reg.name, url: reg.url }, 'capability registered');
        return;
      }
      last = `HTTP ${res.status} ${res.text.trim()}`;
      if (res.status === 400) break; // the orchestrator's answer to a wrong secret
    } catch (err) {
      last = errorMessage(err);
    }
    log.warn({ attempt, err: last }, 'capability registration attempt failed');
    if (attempt < attempts) await new Promise((r) => setTimeout(r, opts.delayMs ?? 2000));
  }
  throw new AppError('capability_registration_failed', `could not register capability "${reg.name}" with ${reg.orchUrl}: ${last}`);
}
