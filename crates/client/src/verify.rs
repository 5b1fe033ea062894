//! `medledger verify`: answers checked end to end, trusting nothing the node says.
//!
//! 1. read the value(s) and ICS23 proofs at a state height H from the node;
//! 2. establish the app hash of H from something the consortium signed, one of:
//!    - **headers**: the signed header H+1 (it carries the app hash of the state after H) and its
//!      validator set, checked with CometBFT's light-client rules (`medledger_query::light`:
//!      more than 2/3 of its own set, more than 1/3 of the trusted set when skipping, trust root within the
//!      trusting period of the auditor's clock) against the genesis validators or a trusted
//!      header (`--trust-height`/`--trust-hash`);
//!    - **certificate**: the BLS checkpoint certificate of H (stored on chain at `cert/H`), checked
//!      with one aggregate verification against the members' BLS keys from genesis, handed over
//!      to each later validator set at the heights governance changed it
//!      (`validators/changes/*`; see [`trust_for_state`]);
//! 3. check every proof against that app hash.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use medledger_query::certificate::CertTrust;
use medledger_query::history::{verify_access_digest, verify_access_history, ProvenRead};
use medledger_query::light::{verify_header, TrustedValidators};
use medledger_query::{verify, Proven};
use medledger_tx::digest::ListDigest;
use medledger_tx::keys;
use medledger_tx::pb::{AccessEvent, Certificate};
use prost::Message;
use serde::Serialize;

use crate::rpc::Client;

/// What the auditor trusts.
pub enum Trust {
    /// Light-client verification of headers from the genesis validators.
    Headers(TrustedValidators),
    /// BLS checkpoint certificates from the members' genesis BLS keys.
    Certificates(CertTrust),
}

impl Trust {
    /// Reads the trusted starting point from the consortium's genesis file.
    pub fn from_genesis(path: &Path, certificates: bool) -> anyhow::Result<Trust> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading trusted genesis {}", path.display()))?;
        Ok(if certificates {
            Trust::Certificates(CertTrust::from_genesis_json(&bytes)?)
        } else {
            Trust::Headers(TrustedValidators::from_genesis_json(&bytes)?)
        })
    }

    /// Light-client options: the trusting period, and a trusted header to start from instead of
    /// genesis (`(height, header hash)`, obtained out of band). No effect with certificates.
    pub async fn with_header_root(
        self,
        client: &Client,
        trusting_period: Duration,
        root: Option<(u64, Vec<u8>)>,
    ) -> anyhow::Result<Trust> {
        let Trust::Headers(genesis) = self else {
            return Ok(self);
        };
        let Some((height, hash)) = root else {
            return Ok(Trust::Headers(
                genesis.with_trusting_period(trusting_period),
            ));
        };
        let (header, _) = client.light_block(height).await?;
        anyhow::ensure!(
            header.header.hash().as_bytes() == hash.as_slice(),
            "header {height} has hash {}, not the trusted {}",
            header.header.hash(),
            hex::encode_upper(&hash)
        );
        anyhow::ensure!(
            header.header.chain_id.as_str() == genesis.chain_id,
            "the trusted header is for chain {}, genesis is {}",
            header.header.chain_id,
            genesis.chain_id
        );
        let (_, next) = client.light_block(height + 1).await?;
        let root = TrustedValidators::from_trusted_header(&header, &next, genesis.names)?;
        Ok(Trust::Headers(root.with_trusting_period(trusting_period)))
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        match self {
            Trust::Headers(t) => &t.chain_id,
            Trust::Certificates(t) => &t.chain_id,
        }
    }
}

/// Who vouched for the app hash of a state height, and how.
#[derive(Clone, Debug, Serialize)]
pub struct Attestation {
    /// `light-client header` or `BLS certificate`.
    pub method: &'static str,
    /// The state height.
    pub height: u64,
    /// Its app hash.
    pub app_hash: Vec<u8>,
    /// Names of the validators whose signatures verified.
    pub signers: Vec<String>,
    /// Their voting power.
    pub signed_power: u64,
    /// Total voting power.
    pub total_power: u64,
    /// Number of validators.
    pub validator_count: usize,
}

/// A value proven at a height.
#[derive(Clone, Debug)]
pub struct VerifiedRead {
    /// The value, or `None` if proven absent.
    pub value: Option<Vec<u8>>,
    /// State height.
    pub height: u64,
    /// Who vouched for the app hash.
    pub attestation: Attestation,
}

/// The state height to read: `requested`, or the latest one the trust method can vouch for
/// (latest committed for headers; latest certified for certificates).
async fn choose_height(client: &Client, trust: &Trust, requested: u64) -> anyhow::Result<u64> {
    if requested != 0 {
        return Ok(requested);
    }
    match trust {
        // 0: the node answers at its app's last committed height (CometBFT's /status can be one
        // block ahead of the app); that state's header (the next block) follows within a block.
        Trust::Headers(_) => Ok(0),
        Trust::Certificates(_) => {
            let (latest, _) = client.query_raw(&keys::latest_certificate(), 0).await?;
            latest
                .as_deref()
                .and_then(keys::decode_u64)
                .context("the ledger holds no checkpoint certificate yet (the first, of state 0, is in block 2)")
        }
    }
}

/// Establishes the app hash of state `height` under `trust`.
pub async fn attest(client: &Client, trust: &Trust, height: u64) -> anyhow::Result<Attestation> {
    match trust {
        Trust::Headers(t) => {
            anyhow::ensure!(
                height + 1 > t.height,
                "state {height} is older than the trust root (header {}): this verifier checks later headers only; start from an older trusted header",
                t.height
            );
            let (header, validators) = client.light_block(height + 1).await?;
            let a = verify_header(t, &header, &validators, now()?).with_context(|| {
                format!("header {} is not signed by the consortium", height + 1)
            })?;
            Ok(Attestation {
                method: "light-client header",
                height,
                app_hash: a.app_hash,
                signers: a.signers,
                signed_power: a.signed_power,
                total_power: a.total_power,
                validator_count: a.validator_count,
            })
        }
        Trust::Certificates(genesis) => {
            // The certificate itself needs no proof: it verifies on its own.
            let cert = read_certificate(client, height).await?;
            let (t, walked) = trust_for_state(client, genesis, height).await?;
            let (state, signers) = t
                .verify(&cert)
                .context("the checkpoint certificate is not valid")?;
            prove_handovers_complete(client, &state.app_hash, height, walked).await?;
            Ok(Attestation {
                method: "BLS certificate",
                height,
                app_hash: state.app_hash,
                signers,
                signed_power: state.signed_power,
                total_power: state.total_power,
                validator_count: t.validators.len(),
            })
        }
    }
}

/// The verification time: the auditor's clock (the light-client trusting period is measured
/// against it, as CometBFT's light client does).
fn now() -> anyhow::Result<tendermint::Time> {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    let secs = i64::try_from(d.as_secs()).context("the clock is out of range")?;
    Ok(tendermint::Time::from_unix_timestamp(
        secs,
        d.subsec_nanos(),
    )?)
}

/// Parses a trusting period: `168h`, `14d`, `90m` or `3600s`.
pub fn parse_period(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .with_context(|| format!("{s:?}: want a number and a unit (s, m, h, d)"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => anyhow::bail!("{s:?}: the unit must be s, m, h or d"),
    }
    .context("trusting period out of range")?;
    anyhow::ensure!(secs > 0, "the trusting period must be positive");
    Ok(Duration::from_secs(secs))
}

/// Most validator-set changes one verification walks through.
pub const MAX_HANDOVERS: u64 = 10_000;

async fn read_certificate(client: &Client, height: u64) -> anyhow::Result<Certificate> {
    let (bytes, _) = client.query_raw(&keys::certificate(height), 0).await?;
    let bytes = bytes.with_context(|| format!("no checkpoint certificate for height {height}"))?;
    let cert = Certificate::decode(bytes.as_slice()).context("certificate does not decode")?;
    anyhow::ensure!(
        cert.height == height,
        "certificate is for height {}, not {height}",
        cert.height
    );
    Ok(cert)
}

/// The trust for the certificate of state `height`: the genesis set, handed over at each block
/// `c < height` that changed the registry (the certificate of `c`, signed by the old set,
/// certifies the new registry at `c`). Returns it and the number of handovers. The list of
/// changes is read unproven here; [`prove_handovers_complete`] then proves it was complete.
pub async fn trust_for_state(
    client: &Client,
    genesis: &CertTrust,
    height: u64,
) -> anyhow::Result<(CertTrust, u64)> {
    let changes = keys::List::ValidatorChanges;
    let (count, _) = client.query_raw(&changes.count_key(), height).await?;
    let count = count.as_deref().and_then(keys::decode_u64).unwrap_or(0);
    anyhow::ensure!(
        count <= MAX_HANDOVERS,
        "{count} validator-set changes; this verifier walks at most {MAX_HANDOVERS}"
    );
    let mut trust = genesis.clone();
    let mut walked = 0;
    for n in 0..count {
        let (changed, _) = client.query_raw(&changes.entry_key(n), height).await?;
        let changed = changed
            .as_deref()
            .and_then(keys::decode_u64)
            .context("validator change index has a gap")?;
        // A change made by block `height` itself acts from later certificates only.
        if changed >= height {
            break;
        }
        let cert = read_certificate(client, changed).await.with_context(|| {
            format!("the validators changed at height {changed}, whose certificate is needed to trust the new set (verify with headers instead)")
        })?;
        let (registry, _) = client.read_with_proof(&keys::validators(), changed).await?;
        trust = trust
            .handover(&cert, &registry)
            .with_context(|| format!("handing trust over at height {changed}"))?;
        walked += 1;
    }
    Ok((trust, walked))
}

/// Proves against the certified app hash of `height` that the node named every registry change
/// before `height`: the change count is `walked`, or `walked + 1` with the last change at
/// `height` itself. A node hiding a change would otherwise make the auditor trust a stale set.
async fn prove_handovers_complete(
    client: &Client,
    app_hash: &[u8],
    height: u64,
    walked: u64,
) -> anyhow::Result<()> {
    let proven_u64 = |read: &ProvenRead| -> anyhow::Result<Option<u64>> {
        let v = match verify(app_hash, &read.key, read.value.as_deref(), &read.proof)? {
            Proven::Present(v) => Some(keys::decode_u64(&v).context("counter is not 8 bytes")?),
            Proven::Absent => None,
        };
        Ok(v)
    };
    let (count, _) = client
        .read_with_proof(&keys::validator_change_count(), height)
        .await?;
    let count = proven_u64(&count)
        .context("validator change count")?
        .unwrap_or(0);
    if count == walked {
        return Ok(());
    }
    anyhow::ensure!(count == walked + 1, "the node named {walked} validator-set changes before height {height}; the certified state counts {count}");
    let (last, _) = client
        .read_with_proof(&keys::validator_change(walked), height)
        .await?;
    anyhow::ensure!(
        proven_u64(&last)? == Some(height),
        "the node left out a validator-set change before height {height}"
    );
    Ok(())
}

/// Reads `key` (at `height`, 0 = latest attestable) and verifies it end to end.
pub async fn verify_key(
    client: &Client,
    trust: &Trust,
    key: &[u8],
    height: u64,
) -> anyhow::Result<VerifiedRead> {
    let height = choose_height(client, trust, height).await?;
    let (read, height) = client.read_with_proof(key, height).await?;
    let attestation = attest(client, trust, height).await?;
    let proven = verify(
        &attestation.app_hash,
        key,
        read.value.as_deref(),
        &read.proof,
    )
    .with_context(|| {
        format!(
            "the node's answer for {} does not match the signed app hash",
            String::from_utf8_lossy(key)
        )
    })?;
    let value = match proven {
        Proven::Present(v) => Some(v),
        Proven::Absent => None,
    };
    Ok(VerifiedRead {
        value,
        height,
        attestation,
    })
}

/// A patient's complete access history, verified end to end: with one proof of the history's
/// digest and the events read without proofs (plus one proof per break-glass event, for its
/// review), or, for a history older than digests, one proof per event.
pub async fn verify_history(
    client: &Client,
    trust: &Trust,
    patient: &str,
    height: u64,
) -> anyhow::Result<(Vec<AccessEvent>, Attestation)> {
    let height = choose_height(client, trust, height).await?;
    let (digest, height) = client
        .read_with_proof(&keys::access_digest(patient), height)
        .await?;
    // Not yet verified: the claimed count only sizes the reads; the proof is checked at the end.
    match digest.value.as_deref().and_then(ListDigest::decode) {
        Some(d) => history_by_digest(client, trust, patient, height, digest, d.count).await,
        None => history_by_entries(client, trust, patient, height, digest).await,
    }
}

fn check_history_len(n: u64) -> anyhow::Result<()> {
    if n > medledger_tx::limits::MAX_HISTORY_READ {
        anyhow::bail!(
            "the history has {n} events, more than the {} one command verifies",
            medledger_tx::limits::MAX_HISTORY_READ
        );
    }
    Ok(())
}

/// The history as its events' values and one proof of its digest (`medledger_tx::digest`).
async fn history_by_digest(
    client: &Client,
    trust: &Trust,
    patient: &str,
    height: u64,
    digest: ProvenRead,
    n: u64,
) -> anyhow::Result<(Vec<AccessEvent>, Attestation)> {
    check_history_len(n)?;
    let history = keys::List::Access(patient);
    let mut values = Vec::new();
    let mut reviews = Vec::new();
    for i in 0..n {
        let key = history.entry_key(i);
        let (value, _) = client.query_raw(&key, height).await?;
        let value = value.with_context(|| format!("the node has no event {i}"))?;
        // A review and a report are written outside the digest's chain: proven one by one.
        if AccessEvent::decode(value.as_slice())
            .is_ok_and(|e| e.break_glass || e.reported_height != 0)
        {
            reviews.push(client.read_with_proof(&key, height).await?.0);
        }
        values.push(value);
    }
    let attestation = attest(client, trust, height).await?;
    let events = verify_access_digest(&attestation.app_hash, patient, &digest, &values, &reviews)
        .context("the node's access history does not match the signed app hash")?;
    Ok((events, attestation))
}

/// The history as the proven count and one proven read per event: for an empty history, or
/// one older than digests, whose digest `absent` must prove absent.
async fn history_by_entries(
    client: &Client,
    trust: &Trust,
    patient: &str,
    height: u64,
    absent: ProvenRead,
) -> anyhow::Result<(Vec<AccessEvent>, Attestation)> {
    let history = keys::List::Access(patient);
    let (count, _) = client.read_with_proof(&history.count_key(), height).await?;
    let n = count
        .value
        .as_deref()
        .and_then(keys::decode_u64)
        .unwrap_or(0);
    check_history_len(n)?;
    // Every index below the count the node claims; the proof of the count keeps it honest.
    let mut events: Vec<ProvenRead> = Vec::new();
    for i in 0..n {
        events.push(
            client
                .read_with_proof(&history.entry_key(i), height)
                .await?
                .0,
        );
    }
    let attestation = attest(client, trust, height).await?;
    // The node must prove the digest absent too, or it could hide one to slip past it.
    verify_absent(&attestation.app_hash, &absent)?;
    let events = verify_access_history(&attestation.app_hash, patient, &count, &events)
        .context("the node's access history does not match the signed app hash")?;
    Ok((events, attestation))
}

/// Checks that `read` proves its key absent under `app_hash`.
fn verify_absent(app_hash: &[u8], read: &ProvenRead) -> anyhow::Result<()> {
    match verify(app_hash, &read.key, read.value.as_deref(), &read.proof)? {
        Proven::Absent => Ok(()),
        Proven::Present(_) => anyhow::bail!(
            "{} is present but not a digest",
            String::from_utf8_lossy(&read.key)
        ),
    }
}

/// `app hash …, light-client header signed by 4/4 validators (hospital-a, …), 40 of 40 power`.
pub fn signed_by(a: &Attestation) -> String {
    format!(
        "app hash {}, {} signed by {}/{} validators ({}), {} of {} voting power",
        hex::encode(&a.app_hash),
        a.method,
        a.signers.len(),
        a.validator_count,
        a.signers.join(", "),
        a.signed_power,
        a.total_power
    )
}

/// Several reads at one height, verified together against one attested app hash: for answers
/// that need a few keys whose names depend on earlier values (indexes, counters).
pub struct ProvenSession<'a> {
    client: &'a Client,
    /// The state height all reads are answered at.
    pub height: u64,
    reads: Vec<ProvenRead>,
}

impl<'a> ProvenSession<'a> {
    /// Starts a session at `height` (0 = latest attestable under `trust`).
    pub async fn start(
        client: &'a Client,
        trust: &Trust,
        height: u64,
    ) -> anyhow::Result<ProvenSession<'a>> {
        let requested = choose_height(client, trust, height).await?;
        // Pin the height with a first read so every later read is at the same state.
        let (_, height) = client
            .read_with_proof(&keys::validators(), requested)
            .await?;
        Ok(ProvenSession {
            client,
            height,
            reads: Vec::new(),
        })
    }

    /// Reads `key` (unverified until [`ProvenSession::finish`]).
    pub async fn get(&mut self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let (read, _) = self.client.read_with_proof(key, self.height).await?;
        let value = read.value.clone();
        self.reads.push(read);
        Ok(value)
    }

    /// Attests the height and verifies every read against it.
    pub async fn finish(self, trust: &Trust) -> anyhow::Result<Attestation> {
        let attestation = attest(self.client, trust, self.height).await?;
        for r in &self.reads {
            verify(&attestation.app_hash, &r.key, r.value.as_deref(), &r.proof).with_context(
                || {
                    format!(
                        "the node's answer for {} does not match the signed app hash",
                        String::from_utf8_lossy(&r.key)
                    )
                },
            )?;
        }
        Ok(attestation)
    }
}

/// `permitted(patient, actor, action, class/record, purpose)` decided by the auditor from proven
/// state, with the ledger's own evaluation function, as of the block after the proven height
/// (its header time is the time used). Returns the permitting consent id, or `None`.
pub async fn verify_permitted(
    client: &Client,
    trust: &Trust,
    req: PermittedQuery,
    height: u64,
) -> anyhow::Result<(Option<String>, Attestation, u64)> {
    use medledger_tx::rules::consent::{permits, Request, DID_PREFIX};
    let mut s = ProvenSession::start(client, trust, height).await?;
    let (member, practitioner) = if req.actor.starts_with(DID_PREFIX) {
        let p = s
            .get(&keys::practitioner(&req.actor))
            .await?
            .context("no such practitioner")?;
        let p = medledger_tx::pb::Practitioner::decode(p.as_slice())?;
        (p.member_id, Some(req.actor.clone()))
    } else {
        (req.actor.clone(), None)
    };
    let mut consents = Vec::new();
    for grantee in std::iter::once(member.as_str()).chain(practitioner.as_deref()) {
        let grants = keys::List::Grants(&req.patient, grantee);
        let count = s
            .get(&grants.count_key())
            .await?
            .as_deref()
            .and_then(keys::decode_u64)
            .unwrap_or(0);
        for n in 0..count.min(medledger_tx::limits::MAX_CONSENTS_PER_GRANTEE) {
            if let Some(id) = s.get(&grants.entry_key(n)).await? {
                let id = String::from_utf8_lossy(&id).into_owned();
                if let Some(c) = s.get(&keys::consent(&id)).await? {
                    consents.push(medledger_tx::pb::Consent::decode(c.as_slice())?);
                }
            }
        }
    }
    let (header, _) = client.light_block(s.height + 1).await?;
    let time = u64::try_from(header.header.time.unix_timestamp()).unwrap_or(0);
    let state_height = s.height;
    let attestation = s.finish(trust).await?;
    let request = Request {
        patient: &req.patient,
        member: &member,
        practitioner: practitioner.as_deref(),
        action: req.action,
        data_class: &req.data_class,
        record_id: &req.record_id,
        purpose: req.purpose,
    };
    let permit = consents
        .iter()
        .find(|c| permits(c, &request, state_height + 1, time))
        .map(|c| c.id.clone());
    Ok((permit, attestation, time))
}

/// The question asked of [`verify_permitted`].
#[derive(Clone, Debug)]
pub struct PermittedQuery {
    /// Patient id.
    pub patient: String,
    /// Member id or practitioner DID.
    pub actor: String,
    /// `Action` as i32.
    pub action: i32,
    /// FHIR resource type.
    pub data_class: String,
    /// Record id (may be empty).
    pub record_id: String,
    /// `Purpose` as i32.
    pub purpose: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusting_periods_parse_with_units_and_refuse_nonsense() {
        assert_eq!(
            parse_period("168h").ok(),
            Some(Duration::from_secs(168 * 3600))
        );
        assert_eq!(
            parse_period("14d").ok(),
            Some(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(parse_period("90m").ok(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_period("3600s").ok(), Some(Duration::from_secs(3600)));
        for bad in ["", "h", "10", "10w", "0h", "-1h", "99999999999999999999d"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }
}
