// The page's release (issue 27, "Code trust"): the release hash of the code this page runs, as
// its gateway reports it (GET /pages/release, the SHA-256 of the manifest of the files it
// serves), and whether that is the release the consortium approved on chain: proven here
// (`params/web-release`, read with an ICS23 proof against a certified app hash) once the page
// reads the ledger. A gateway that serves other code could also change this text; what stops it
// is that honest gateways refuse to serve any other release, and anyone can compare a gateway's
// files with the chain (`medledger web check URL`, docs/privacy.md).

import { fromBinary } from '@bufbuild/protobuf';
import { toHex } from '../bytes.ts';
import { WebReleaseSchema } from '../gen/medledger/v1/governance_pb.ts';
import * as keys from '../keys.ts';
import type { Attested, Ledger } from '../ledger.ts';
import { $ } from './dom.ts';

/** `GET /pages/release` (crates/gateway/src/pages.rs, ReleaseStatus). */
interface ReleaseStatus {
  status: string;
  served: string;
  approved?: string;
  version?: string;
  height?: number;
  message: string;
}

/** How often the approved release is proven again while the page is open. */
const PROVE_EVERY_MS = 60_000;

let served: string | undefined;
let provenAt = 0;

function set(kind: string, text: string): void {
  const s = $('#release-status');
  s.textContent = text;
  s.setAttribute('data-release', kind);
  s.className = kind === 'verified' ? 'ok' : kind === 'approved' || kind === 'unknown' ? '' : 'bad';
}

/** Shows the release hash this page's gateway serves and what the gateway says of it. */
export async function showRelease(): Promise<void> {
  try {
    const r = await fetch('/pages/release', { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const s = (await r.json()) as ReleaseStatus;
    if (typeof s.served !== 'string' || !/^[0-9a-f]{64}$/.test(s.served)) throw new Error('no release hash in the answer');
    served = s.served;
    $('#release-hash').textContent = s.served;
    if (s.status === 'approved') set('approved', `the release approved on chain (${s.version ?? '?'}, height ${s.height ?? '?'}), the gateway says; this page checks it against the ledger once it reads it.`);
    else if (s.status === 'not_approved') set('not_approved', 'NOT approved on chain: the consortium has approved no release of these pages yet.');
    else set('unknown', `not checked: ${s.message}`);
  } catch (e) {
    set('unknown', `unknown: the gateway did not say which release it serves (${e instanceof Error ? e.message : String(e)}).`);
  }
}

/** Proves the approved release at `at` and compares it with the served one (at most every minute). */
export async function proveRelease(ledger: Ledger, at: Attested): Promise<void> {
  if (!served || Date.now() - provenAt < PROVE_EVERY_MS) return;
  const r = await ledger.read(at, keys.webRelease());
  if (r.denied) return;
  if (!r.verified) {
    set('unverified', `could NOT be checked against the ledger: ${r.error ?? 'the proof did not verify'}`);
    return;
  }
  provenAt = Date.now();
  if (!r.value) {
    set('not_approved', `NOT approved on chain: the ledger proves (height ${at.height}) that no release of these pages is approved.`);
    return;
  }
  const w = fromBinary(WebReleaseSchema, r.value);
  const approved = toHex(w.bundleSha256);
  if (approved === served) {
    set('verified', `verified: this is the release approved on chain (${w.version}, approved at height ${w.height}), proven at height ${at.height}.`);
  } else {
    set('mismatch', `does NOT match the release approved on chain (${approved}, ${w.version}): this gateway serves other page code. Do not open your key here.`);
  }
}
