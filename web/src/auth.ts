// The pages' session with the gateway: a bearer token got with an RFC 9421 signature of
// `POST /auth/token` (the key never leaves the page; only the signature does), sent on every
// read. The gateway only decides what a key may *read*; what the page shows is still verified
// against the ledger's certified state (ledger.ts), so nothing here is trusted for "verified".
//
//   POST /auth/token  signed (httpsig.ts), empty body → 200 {access_token, token_type: "Bearer",
//                     expires_in, subject: {kind, id}}; 401 bad signature; 403 the key has no
//                     role on the ledger; 429 rate limited (Retry-After).
//   any other read    `Authorization: Bearer <token>`; a 401 gets one new token and one retry.

import { toHex } from './bytes.ts';
import { signHeaders } from './httpsig.ts';

/** Who the gateway says the key is (from the ledger's key owner records). */
export interface Subject {
  kind: 'patient' | 'member' | 'practitioner' | string;
  id: string;
}

/** A refusal by the gateway (not by the ledger): status and the gateway's message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly what: string,
    readonly detail: string,
    readonly retryAfterSecs?: number,
  ) {
    super(`${what}: ${describeStatus(status)}${detail ? `: ${detail}` : ''}`);
  }
}

/** 403 on a read: the gateway does not let this key read that state (never a verification failure). */
export class DeniedError extends HttpError {}

export function describeStatus(status: number): string {
  switch (status) {
    case 401:
      return 'HTTP 401, the gateway did not accept the key\'s signature or token';
    case 403:
      return 'HTTP 403, not permitted for this key';
    case 404:
      return 'HTTP 404, the gateway does not offer this';
    case 429:
      return 'HTTP 429, rate limited by the gateway';
    default:
      return `HTTP ${status}`;
  }
}

/** The `error` of a gateway's JSON refusal, or the start of its text. */
export function errorText(text: string): string {
  try {
    const j = JSON.parse(text);
    if (typeof j?.error === 'string') return j.error.slice(0, 300);
    if (typeof j?.error?.message === 'string') return `${j.error.message} ${j.error.data ?? ''}`.trim().slice(0, 300);
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

/** Seconds of a `Retry-After` header (delta-seconds only; an HTTP date counts as 1 s). */
export function retryAfterSecs(h: string | null): number | undefined {
  if (h === null) return undefined;
  return /^\d{1,6}$/.test(h.trim()) ? Number(h.trim()) : 1;
}

export interface SessionOptions {
  /** Base URL the signature names: the gateway's public URL, `/auth/token` appended. */
  gateway: string;
  fetchFn?: typeof fetch;
  /** UNIX milliseconds (tests pass a fake clock). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** The longest a 429's Retry-After is waited for, and how many times. */
  maxRetryWaitMs?: number;
  maxRetries429?: number;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A key's session: `fetch(path)` sends the bearer token (getting one first when needed), gets a
 * new one once on 401, and waits out a 429's Retry-After (bounded). Without a key it sends no
 * token (for the open `/rpc/genesis` and `/rpc/status`).
 */
export class Session {
  private key?: { seed: Uint8Array; publicKey: Uint8Array };
  private token?: { value: string; until: number };
  private pending?: Promise<string>;
  subject?: Subject;
  readonly gateway: string;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly maxRetryWaitMs: number;
  private readonly maxRetries429: number;

  constructor(o: SessionOptions) {
    this.gateway = o.gateway.replace(/\/+$/, '');
    this.fetchFn = o.fetchFn ?? ((...a) => fetch(...a));
    this.now = o.now ?? (() => Date.now());
    this.sleep = o.sleep ?? realSleep;
    this.maxRetryWaitMs = o.maxRetryWaitMs ?? 30_000;
    this.maxRetries429 = o.maxRetries429 ?? 3;
  }

  /** Holds `key` (in memory only) and forgets any token of the previous key. */
  setKey(key: { seed: Uint8Array; publicKey: Uint8Array } | undefined): void {
    this.key = key;
    this.token = undefined;
    this.pending = undefined;
    this.subject = undefined;
  }

  hasKey(): boolean {
    return this.key !== undefined;
  }

  /** Signs `POST /auth/token` and returns the new token (throws HttpError on a refusal). */
  async login(): Promise<Subject> {
    this.token = undefined;
    await this.bearer();
    return this.subject!;
  }

  private async bearer(): Promise<string> {
    if (this.token && this.now() < this.token.until) return this.token.value;
    this.pending ??= this.fetchToken().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async fetchToken(): Promise<string> {
    const key = this.key;
    if (!key) throw new HttpError(401, 'token', 'open a key first');
    const path = '/auth/token';
    for (let attempt = 0; ; attempt++) {
      const headers = signHeaders(key.seed, 'POST', `${this.gateway}${path}`, new Uint8Array(0), Math.floor(this.now() / 1000));
      const res = await this.fetchFn(path, { method: 'POST', headers: Object.fromEntries(headers), body: new Uint8Array(0), cache: 'no-store' });
      const text = await res.text();
      if (res.status === 429 && (await this.waitOut(res, attempt))) continue;
      if (!res.ok) {
        const detail = res.status === 403 ? `the ledger gives key ${toHex(key.publicKey).slice(0, 16)}… no role (${errorText(text)})` : errorText(text);
        throw new HttpError(res.status, 'signing in', detail, retryAfterSecs(res.headers.get('retry-after')));
      }
      let j: any;
      try {
        j = JSON.parse(text);
      } catch {
        throw new HttpError(res.status, 'signing in', 'the token answer is not JSON');
      }
      if (typeof j?.access_token !== 'string' || !/^[0-9a-f]{16,256}$/i.test(j.access_token)) throw new HttpError(res.status, 'signing in', 'the answer carries no access_token');
      if (key !== this.key) throw new HttpError(401, 'signing in', 'the key changed meanwhile');
      const secs = Number.isSafeInteger(j.expires_in) && j.expires_in > 0 ? j.expires_in : 60;
      // Renew a little before the gateway would refuse it.
      this.token = { value: j.access_token, until: this.now() + Math.max(1, secs - 30) * 1000 };
      this.subject = { kind: String(j.subject?.kind ?? ''), id: String(j.subject?.id ?? '') };
      return j.access_token;
    }
  }

  /** On a 429, waits its Retry-After (bounded) and says whether to try again. */
  private async waitOut(res: Response, attempt: number): Promise<boolean> {
    if (attempt >= this.maxRetries429) return false;
    const secs = retryAfterSecs(res.headers.get('retry-after')) ?? 1;
    if (secs * 1000 > this.maxRetryWaitMs) return false;
    await this.sleep(secs * 1000);
    return true;
  }

  /**
   * `fetch(path)` with the token. `auth: false` sends none (the open methods and signed
   * broadcasts). A 401 with a token gets one new token and one retry; a 429 is waited out.
   */
  async fetch(path: string, init: RequestInit = {}, auth = true): Promise<Response> {
    let renewed = false;
    for (let attempt = 0; ; attempt++) {
      const headers = new Headers(init.headers);
      const withToken = auth && this.key !== undefined;
      if (withToken) headers.set('authorization', `Bearer ${await this.bearer()}`);
      const res = await this.fetchFn(path, { cache: 'no-store', ...init, headers });
      if (res.status === 401 && withToken && !renewed) {
        renewed = true;
        this.token = undefined;
        continue;
      }
      if (res.status === 429 && (await this.waitOut(res, attempt))) continue;
      return res;
    }
  }
}
