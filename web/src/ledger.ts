// A verifying client of the ledger: reads through a CometBFT RPC (the gateway's /rpc/
// passthrough, which it does not trust), attests a state with a BLS checkpoint certificate of
// the genesis consortium, and verifies every value against that state's app hash.

import { decodeU64, equal, fromBase64, fromUtf8, toHex, utf8 } from './bytes.ts';
import { CertError, trustFromGenesis, trustFromRegistry, verifyCertificate, type CertTrust, type CertifiedState } from './cert.ts';
import { expand, PROOF_OP_TYPE } from './compact.ts';
import { decodeDigest, digestOf, sameDigest, type ListDigest } from './digest.ts';
import { JMT_SPEC, verifyMembership, verifyNonMembership } from './ics23.ts';
import * as keys from './keys.ts';
import { decodeCertificate, decodeValidatorSet, type Certificate } from './messages.ts';
import { DeniedError, errorText, HttpError, retryAfterSecs } from './auth.ts';

/** Sends `GET {base}{method}?{query}` and returns the parsed CometBFT JSON-RPC body. */
export type Transport = (method: string, query: string) => Promise<any>;

/** Fetches one RPC URL (the pages pass their gateway session, which adds the bearer token). */
export type RpcFetch = (url: string, method: string) => Promise<Response>;

/**
 * A transport over HTTP. The gateway's own refusals (`{"error": "..."}` with 401, 403, 404, 429)
 * become HttpError (DeniedError for 403: the key may not read that key, which says nothing about
 * the ledger's answers); CometBFT's JSON-RPC errors become plain errors.
 */
export function httpTransport(base: string, fetchFn: RpcFetch = (url) => fetch(url, { cache: 'no-store' })): Transport {
  return async (method, query) => {
    const res = await fetchFn(`${base}${method}${query ? `?${query}` : ''}`, method);
    const text = await res.text();
    if (res.status === 403) throw new DeniedError(403, method, errorText(text));
    if ([401, 404, 429].includes(res.status)) throw new HttpError(res.status, method, errorText(text), retryAfterSecs(res.headers.get('retry-after')));
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      throw new HttpError(res.status, method, text.slice(0, 200));
    }
    if (typeof body?.error === 'string') throw new HttpError(res.status, method, body.error.slice(0, 300));
    if (body?.error) throw new Error(`${method}: ${body.error.message ?? ''} ${body.error.data ?? ''}`.trim());
    if (!res.ok) throw new HttpError(res.status, method, '');
    return body;
  };
}

export interface Answer {
  key: string;
  /** The height the node says it answered. */
  height: bigint;
  /** The value, or undefined when absent. */
  value?: Uint8Array;
  proofType?: string;
  proofKey?: Uint8Array;
  proofData?: Uint8Array;
}

/**
 * One value read at an attested state: `verified` only when its proof checked. `denied`: the
 * gateway would not let this key read it (HTTP 403), so nothing was checked, and nothing is
 * known to be wrong either.
 */
export interface Read {
  key: string;
  value?: Uint8Array;
  verified: boolean;
  denied?: boolean;
  error?: string;
}

export class VerifyError extends Error {}

/** The state the pages read at: a height whose app hash a certificate of the trust root signed. */
export interface Attested extends CertifiedState {
  validatorCount: number;
  handovers: number;
}

export const MAX_HANDOVERS = 10_000;

function hexKey(key: string): string {
  return toHex(utf8(key));
}

/** Parses an abci_query answer of `key` (throws on a query error). */
export function parseAnswer(key: string, body: any): Answer {
  const r = body?.result?.response;
  if (!r) throw new VerifyError('not an abci_query answer');
  if (r.code !== 0 && r.code !== undefined) throw new VerifyError(`the node refused the query: code ${r.code} ${r.log ?? ''}`);
  const value = r.value ? fromBase64(r.value) : undefined;
  const op = r.proofOps?.ops?.[0];
  return {
    key,
    height: BigInt(r.height ?? '0'),
    value: value && value.length > 0 ? value : undefined,
    proofType: op?.type,
    proofKey: op?.key ? fromBase64(op.key) : undefined,
    proofData: op?.data ? fromBase64(op.data) : undefined,
  };
}

/**
 * Verifies `answer` for `key` against `appHash` of state `height` (crates/query/src/lib.rs::verify):
 * a membership proof for a value, a non-membership proof for an absence. Throws on failure.
 */
export function verifyAnswer(answer: Answer, key: string, height: bigint, appHash: Uint8Array): void {
  const k = utf8(key);
  if (answer.height !== height) throw new VerifyError(`the node answered at height ${answer.height}, not ${height}`);
  if (answer.proofType === undefined || answer.proofData === undefined) throw new VerifyError('the answer carries no proof');
  if (answer.proofType !== PROOF_OP_TYPE) throw new VerifyError(`unknown proof type ${JSON.stringify(answer.proofType.slice(0, 64))}`);
  if (answer.proofKey !== undefined && !equal(answer.proofKey, k)) throw new VerifyError('the proof is for another key');
  const proof = expand(answer.proofData, k, answer.value);
  const ok = answer.value !== undefined
    ? verifyMembership(proof, JMT_SPEC, appHash, k, answer.value)
    : verifyNonMembership(proof, JMT_SPEC, appHash, k);
  if (!ok) throw new VerifyError(`proof does not verify against app hash ${toHex(appHash).toUpperCase()}`);
}

async function pool<T, R>(items: T[], limit: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]);
    }
  });
  await Promise.all(workers);
  return out;
}

export class Ledger {
  trust?: CertTrust;
  chainId?: string;
  /** The genesis members' ids and names (suggestions for the consent form; not proof of anything). */
  genesisMembers: { id: string; name: string }[] = [];

  constructor(readonly rpc: Transport) {}

  /** Raw abci_query of `key` at `height` (0 = latest) with a proof. */
  async query(key: string, height: bigint | number = 0): Promise<Answer> {
    const q = `path=%22/store%22&data=0x${hexKey(key)}&height=${height}&prove=true`;
    return parseAnswer(key, await this.rpc('abci_query', q));
  }

  /** Raw abci_query of `key` at `height` WITHOUT a proof: believed only once something proves it. */
  async queryUnproven(key: string, height: bigint | number): Promise<Answer> {
    const q = `path=%22/store%22&data=0x${hexKey(key)}&height=${height}&prove=false`;
    return parseAnswer(key, await this.rpc('abci_query', q));
  }

  /** Loads and checks the trust root: the genesis validators and their BLS keys (PoPs checked). */
  async loadTrust(): Promise<CertTrust> {
    const body = await this.rpc('genesis', '');
    const genesis = body?.result?.genesis;
    this.trust = trustFromGenesis(genesis);
    this.chainId = this.trust.chainId;
    const members: unknown[] = Array.isArray(genesis?.app_state?.members) ? genesis.app_state.members : [];
    this.genesisMembers = members
      .map((m: any) => ({ id: String(m?.id ?? ''), name: String(m?.name ?? '') }))
      .filter((m) => /^[A-Za-z0-9._:-]{1,64}$/.test(m.id))
      .slice(0, 256);
    return this.trust;
  }

  /** The latest certified height (an unproven pointer: the certificate authenticates itself). */
  async latestCertifiedHeight(): Promise<bigint> {
    const a = await this.query(keys.latestCertificate(), 0);
    if (!a.value) throw new VerifyError('the ledger holds no checkpoint certificate yet (they start at block 3)');
    return decodeU64(a.value);
  }

  async certificate(height: bigint): Promise<Certificate> {
    const a = await this.query(keys.certificate(height), 0);
    if (!a.value) throw new VerifyError(`no checkpoint certificate for height ${height}`);
    const cert = decodeCertificate(a.value);
    if (cert.height !== height) throw new VerifyError(`certificate is for height ${cert.height}, not ${height}`);
    return cert;
  }

  /** Attests state `height` (default: the latest certified) with its certificate. */
  async attest(height?: bigint): Promise<Attested> {
    const trust = this.trust ?? (await this.loadTrust());
    const h = height ?? (await this.latestCertifiedHeight());
    const cert = await this.certificate(h);
    const { trust: t, walked } = await this.trustForState(trust, h);
    const state = verifyCertificate(t, cert);
    await this.proveHandoversComplete(state.appHash, h, walked);
    return { ...state, validatorCount: t.validators.length, handovers: walked };
  }

  /**
   * The trust for the certificate of state `height`: genesis, handed over at each block c <
   * height that changed the registry (crates/client/src/verify.rs::trust_for_state). The list of
   * changes is read unproven here and proven complete by proveHandoversComplete.
   */
  private async trustForState(genesis: CertTrust, height: bigint): Promise<{ trust: CertTrust; walked: number }> {
    const countA = await this.query(keys.validatorChangeCount(), height);
    const count = countA.value ? decodeU64(countA.value) : 0n;
    if (count > BigInt(MAX_HANDOVERS)) throw new VerifyError(`${count} validator-set changes; this verifier walks at most ${MAX_HANDOVERS}`);
    let trust = genesis;
    let walked = 0;
    for (let n = 0n; n < count; n++) {
      const c = await this.query(keys.validatorChange(n), height);
      if (!c.value) throw new VerifyError('validator change index has a gap');
      const changed = decodeU64(c.value);
      if (changed >= height) break;
      let cert: Certificate;
      try {
        cert = await this.certificate(changed);
      } catch (e) {
        throw new VerifyError(`the validators changed at height ${changed}, whose certificate is needed to trust the new set: ${(e as Error).message}`);
      }
      const state = verifyCertificate(trust, cert);
      const reg = await this.query(keys.validators(), changed);
      try {
        verifyAnswer(reg, keys.validators(), changed, state.appHash);
      } catch (e) {
        throw new CertError(`handing trust over at height ${changed}: the new validator registry is not proven: ${(e as Error).message}`);
      }
      if (!reg.value) throw new CertError(`handing trust over at height ${changed}: the certified state holds no registry`);
      trust = trustFromRegistry(trust.chainId, decodeValidatorSet(reg.value).validators);
      walked++;
    }
    return { trust, walked };
  }

  private async proveHandoversComplete(appHash: Uint8Array, height: bigint, walked: number): Promise<void> {
    const count = await this.readU64(appHash, height, keys.validatorChangeCount());
    if (count === BigInt(walked)) return;
    if (count !== BigInt(walked + 1)) throw new VerifyError(`the node named ${walked} validator-set changes before height ${height}; the certified state counts ${count}`);
    const last = await this.readU64(appHash, height, keys.validatorChange(walked));
    if (last !== height) throw new VerifyError(`the node left out a validator-set change before height ${height}`);
  }

  private async readU64(appHash: Uint8Array, height: bigint, key: string): Promise<bigint> {
    const a = await this.query(key, height);
    verifyAnswer(a, key, height, appHash);
    return a.value ? decodeU64(a.value) : 0n;
  }

  /** Reads `key` at the attested state and verifies it; never throws for a bad proof. */
  async read(at: Attested, key: string): Promise<Read> {
    let a: Answer;
    try {
      a = await this.query(key, at.height);
    } catch (e) {
      return { key, verified: false, denied: e instanceof DeniedError || undefined, error: (e as Error).message };
    }
    try {
      verifyAnswer(a, key, at.height, at.appHash);
      return { key, value: a.value, verified: true };
    } catch (e) {
      return { key, value: a.value, verified: false, error: (e as Error).message };
    }
  }

  async readMany(at: Attested, ks: string[], concurrency = 6): Promise<Read[]> {
    return pool(ks, concurrency, (k) => this.read(at, k));
  }

  /**
   * A counted list (`…/count` then `…/{n}` for n < count), all at one attested state: the list
   * is complete only when the count and every item verified.
   */
  async readList(at: Attested, countKey: string, itemKey: (n: bigint) => string, max = 100_000): Promise<{ count: Read; n: bigint; items: Read[] }> {
    const count = await this.read(at, countKey);
    let n = 0n;
    if (count.value) {
      try {
        n = decodeU64(count.value);
      } catch (e) {
        return { count: { ...count, verified: false, error: (e as Error).message }, n: 0n, items: [] };
      }
    }
    const shown = n > BigInt(max) ? BigInt(max) : n;
    const ks: string[] = [];
    for (let i = 0n; i < shown; i++) ks.push(itemKey(i));
    return { count, n, items: await this.readMany(at, ks) };
  }

  /**
   * A list that keeps a digest (docs/queries.md, "List digests"): ONE proof of `digestKey`, and
   * the items read without proofs, which are verified only if they chain to the proven head
   * (`leaf` gives each item's leaf). When they do not, every item is read again with its own
   * proof, so the page can say which one is wrong. `null` when the digest is proven absent: an
   * empty list, or one older than digests, to be read with readList.
   */
  async readListByDigest(
    at: Attested,
    digestKey: string,
    itemKey: (n: bigint) => string,
    leaf: (value: Uint8Array) => Uint8Array,
    max = 100_000,
  ): Promise<{ count: Read; n: bigint; items: Read[] } | null> {
    const digest = await this.read(at, digestKey);
    if (digest.verified && !digest.value) return null;
    if (!digest.verified || !digest.value) return { count: digest, n: 0n, items: [] };
    let d: ListDigest;
    try {
      d = decodeDigest(digest.value);
    } catch (e) {
      return { count: { ...digest, verified: false, error: (e as Error).message }, n: 0n, items: [] };
    }
    const shown = d.count > BigInt(max) ? BigInt(max) : d.count;
    const ks: string[] = [];
    for (let i = 0n; i < shown; i++) ks.push(itemKey(i));
    const items: Read[] = await pool(ks, 6, async (key) => {
      try {
        return { key, value: (await this.queryUnproven(key, at.height)).value, verified: false };
      } catch (e) {
        return { key, verified: false, denied: e instanceof DeniedError || undefined, error: (e as Error).message };
      }
    });
    let chained = false;
    if (shown === d.count && items.every((r) => r.value)) {
      try {
        chained = sameDigest(digestOf(items.map((r) => leaf(r.value!))), d);
      } catch {
        chained = false;
      }
    }
    if (chained) return { count: digest, n: d.count, items: items.map((r) => ({ ...r, verified: true })) };
    // Something was altered, dropped or refused: prove each entry alone, to show which.
    return { count: digest, n: d.count, items: await this.readMany(at, ks) };
  }

  /** Polls until the latest certified height is at least `min`. */
  async waitForCertifiedHeight(min: bigint, timeoutMs = 30_000, everyMs = 700): Promise<bigint> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const h = await this.latestCertifiedHeight();
      if (h >= min) return h;
      if (Date.now() > until) throw new VerifyError(`no certificate of height ≥ ${min} after ${timeoutMs / 1000} s (latest ${h})`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

export const utf8Value = (r: Read): string | undefined => (r.value ? fromUtf8(r.value) : undefined);
