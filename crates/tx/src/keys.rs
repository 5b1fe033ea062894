//! Every storage key of the Merkleized state, in one place.
//!
//! Keys are readable byte strings `domain/part/part`; numbers inside keys are zero-padded to 20
//! digits so that lexical order is numeric order. Identifiers may not contain `/` (see
//! [`crate::check`]), so no two different tuples map to the same key. The proof verifier in
//! `medledger-query` builds keys with these same functions.
//!
//! Values are protobuf messages from `proto/medledger/v1/state.proto`, except counters, which are
//! 8-byte big-endian integers ([`encode_u64`]).

/// `member/{id}` → `Member`.
pub fn member(id: &str) -> Vec<u8> {
    format!("member/{id}").into_bytes()
}

/// `keyowner/{hex key}` → `KeyOwner`: who signs with this key.
pub fn key_owner(public_key: &[u8; 32]) -> Vec<u8> {
    format!("keyowner/{}", hex::encode(public_key)).into_bytes()
}

/// `seq/{hex key}` → counter: the next sequence number this key must use.
pub fn sequence(public_key: &[u8; 32]) -> Vec<u8> {
    format!("seq/{}", hex::encode(public_key)).into_bytes()
}

/// `patient/{id}` → `Patient`.
pub fn patient(id: &str) -> Vec<u8> {
    format!("patient/{id}").into_bytes()
}

/// `consent/{id}` → `Consent`.
pub fn consent(id: &str) -> Vec<u8> {
    format!("consent/{id}").into_bytes()
}

/// `counter/consents` → counter: how many consents were ever granted (ids are `c-1`, `c-2`, ...).
pub fn consent_counter() -> Vec<u8> {
    b"counter/consents".to_vec()
}

/// `patient-consents/{patient}/count` → counter of the patient's consents.
pub fn patient_consent_count(patient: &str) -> Vec<u8> {
    format!("patient-consents/{patient}/count").into_bytes()
}

/// `patient-consents/{patient}/{n}` → the id (UTF-8) of the patient's `n`-th consent, from 0.
pub fn patient_consent(patient: &str, n: u64) -> Vec<u8> {
    format!("patient-consents/{patient}/{n:020}").into_bytes()
}

/// `grants/{patient}/{grantee}/count` → counter of the consents from `patient` to `grantee`.
pub fn grant_count(patient: &str, grantee: &str) -> Vec<u8> {
    format!("grants/{patient}/{grantee}/count").into_bytes()
}

/// `grants/{patient}/{grantee}/{n}` → the id (UTF-8) of the `n`-th such consent, from 0.
pub fn grant(patient: &str, grantee: &str, n: u64) -> Vec<u8> {
    format!("grants/{patient}/{grantee}/{n:020}").into_bytes()
}

/// `access/{patient}/count` → counter of the patient's access events. A proof of this counter
/// plus a proof of every index below it is a proof of the patient's *complete* access history.
pub fn access_count(patient: &str) -> Vec<u8> {
    format!("access/{patient}/count").into_bytes()
}

/// `access/{patient}/digest` → the access history's digest (`crate::digest::ListDigest`, 40
/// bytes: the event count and the head of the hash chain over the events).
pub fn access_digest(patient: &str) -> Vec<u8> {
    format!("access/{patient}/digest").into_bytes()
}

/// `access/{patient}/{n}` → `AccessEvent` number `n` of the patient, from 0.
pub fn access_event(patient: &str, n: u64) -> Vec<u8> {
    format!("access/{patient}/{n:020}").into_bytes()
}

/// `refused/{patient}/count` → counter of the patient's refused access attempts (list
/// [`List::Refused`]).
pub fn refused_count(patient: &str) -> Vec<u8> {
    format!("refused/{patient}/count").into_bytes()
}

/// `refused/{patient}/digest` → the digest of the patient's refused attempts
/// (`crate::digest::ListDigest`).
pub fn refused_digest(patient: &str) -> Vec<u8> {
    format!("refused/{patient}/digest").into_bytes()
}

/// `refused/{patient}/{n}` → `RefusedAttempt` number `n` of the patient, from 0.
pub fn refused_attempt(patient: &str, n: u64) -> Vec<u8> {
    format!("refused/{patient}/{n:020}").into_bytes()
}

/// `refused/{patient}/dropped` → counter: the patient's refused attempts the ledger did not
/// record, over [`crate::limits::MAX_REFUSED_PER_PATIENT_PER_BLOCK`] or
/// [`crate::limits::MAX_REFUSED_PER_BLOCK`] (absent means 0).
pub fn refused_dropped(patient: &str) -> Vec<u8> {
    format!("refused/{patient}/dropped").into_bytes()
}

/// `refused-block` → 16 bytes, the height (u64 big-endian) of the last block that recorded a
/// refused attempt and how many it recorded (u64 big-endian): the per-block bound
/// [`crate::limits::MAX_REFUSED_PER_BLOCK`].
pub fn refused_block() -> Vec<u8> {
    b"refused-block".to_vec()
}

/// `report-block` → 16 bytes, the height (u64 big-endian) of the last block that recorded an
/// access report (ReportAccess) and how many it recorded (u64 big-endian): the per-block bound
/// [`crate::limits::MAX_REPORTS_PER_BLOCK`].
pub fn report_block() -> Vec<u8> {
    b"report-block".to_vec()
}

/// `report-block/{patient}` → 16 bytes, as [`report_block`] for the patient's own reports: the
/// bound [`crate::limits::MAX_REPORTS_PER_PATIENT_PER_BLOCK`].
pub fn report_block_of(patient: &str) -> Vec<u8> {
    format!("report-block/{patient}").into_bytes()
}

/// An append-only list in state: a counter key holding its length, and one key per entry,
/// numbered from 0 (zero-padded, so the entries sort in order). The ledger appends with
/// `medledger_state::lists::push`; readers and verifiers read the count, then every index below
/// it at the same height, so a proof of the count makes a proof of the *complete* list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List<'a> {
    /// A patient's consents, in grant order: entries are consent ids (UTF-8).
    PatientConsents(&'a str),
    /// The consents of a patient (first) to one grantee (second): consent ids (UTF-8).
    Grants(&'a str, &'a str),
    /// A patient's access events: `AccessEvent`s.
    Access(&'a str),
    /// A member's break-glass review items: `{patient}/{event index}` (UTF-8).
    Reviews(&'a str),
    /// The HRESCH consents naming a study: consent ids (UTF-8).
    Study(&'a str),
    /// A patient's (first) enrolments with an insurer (second): `Coverage`s.
    Coverage(&'a str, &'a str),
    /// The heights (counters) of the blocks that changed the validator registry.
    ValidatorChanges,
    /// The `nonce/…` keys of the unordered txs valid until one second, forgotten (count and
    /// entries deleted) once a block is later.
    NonceExpiry(u64),
    /// A patient's anchored records, in anchor order: record ids (UTF-8).
    PatientRecords(&'a str),
    /// A patient's refused access attempts: `RefusedAttempt`s.
    Refused(&'a str),
}

impl List<'_> {
    /// The key of the list's length (a counter; absent means empty).
    pub fn count_key(&self) -> Vec<u8> {
        match *self {
            List::PatientConsents(p) => patient_consent_count(p),
            List::Grants(p, g) => grant_count(p, g),
            List::Access(p) => access_count(p),
            List::Reviews(m) => review_count(m),
            List::Study(s) => study_count(s),
            List::Coverage(p, i) => coverage_count(p, i),
            List::ValidatorChanges => validator_change_count(),
            List::NonceExpiry(s) => nonce_expiry_count(s),
            List::PatientRecords(p) => patient_record_count(p),
            List::Refused(p) => refused_count(p),
        }
    }

    /// The key of the list's digest (`crate::digest`): a patient's consents, access history,
    /// records and refused attempts keep one; other lists do not.
    pub fn digest_key(&self) -> Option<Vec<u8>> {
        match *self {
            List::PatientConsents(p) => Some(format!("patient-consents/{p}/digest").into_bytes()),
            List::Access(p) => Some(access_digest(p)),
            List::PatientRecords(p) => Some(format!("patient-records/{p}/digest").into_bytes()),
            List::Refused(p) => Some(refused_digest(p)),
            _ => None,
        }
    }

    /// The key of entry `n` (from 0).
    pub fn entry_key(&self, n: u64) -> Vec<u8> {
        match *self {
            List::PatientConsents(p) => patient_consent(p, n),
            List::Grants(p, g) => grant(p, g, n),
            List::Access(p) => access_event(p, n),
            List::Reviews(m) => review(m, n),
            List::Study(s) => study_consent(s, n),
            List::Coverage(p, i) => coverage(p, i, n),
            List::ValidatorChanges => validator_change(n),
            List::NonceExpiry(s) => nonce_expiry(s, n),
            List::PatientRecords(p) => patient_record(p, n),
            List::Refused(p) => refused_attempt(p, n),
        }
    }
}

/// `validators` → `ValidatorSet`: the registry, in address order.
pub fn validators() -> Vec<u8> {
    b"validators".to_vec()
}

/// `cert/{height}` → `Certificate` of the state at `height`.
pub fn certificate(height: u64) -> Vec<u8> {
    format!("cert/{height:020}").into_bytes()
}

/// `cert/latest` → counter: the highest certified state height.
pub fn latest_certificate() -> Vec<u8> {
    b"cert/latest".to_vec()
}

/// `practitioner/{did}` → `Practitioner`.
pub fn practitioner(did: &str) -> Vec<u8> {
    format!("practitioner/{did}").into_bytes()
}

/// `auditor/{did}` → `Auditor`: practitioner `did`'s auditor grant, written by a passed
/// `GrantAuditor` proposal and deleted by a passed `RevokeAuditor` (absent: no grant). Gateways
/// honour it only while the practitioner is active (docs/privacy.md).
pub fn auditor(did: &str) -> Vec<u8> {
    format!("auditor/{did}").into_bytes()
}

/// `guardians/{patient}` → `Guardians`.
pub fn guardians(patient: &str) -> Vec<u8> {
    format!("guardians/{patient}").into_bytes()
}

/// `enrolments/{member}` → the height of the member's last patient enrolment (8 bytes,
/// big-endian) and how many it made at that height (8 bytes): the per-block enrolment limit.
pub fn enrolments(member: &str) -> Vec<u8> {
    format!("enrolments/{member}").into_bytes()
}

/// `review/{member}/count` → counter of break-glass reviews opened for the member.
pub fn review_count(member: &str) -> Vec<u8> {
    format!("review/{member}/count").into_bytes()
}

/// `review/{member}/{n}` → `{patient}/{event index}` (UTF-8) of the member's `n`-th review item.
pub fn review(member: &str, n: u64) -> Vec<u8> {
    format!("review/{member}/{n:020}").into_bytes()
}

/// `record/{record id}` → `RecordAnchor`.
pub fn record(record_id: &str) -> Vec<u8> {
    format!("record/{record_id}").into_bytes()
}

/// `patient-records/{patient}/count` → counter of the records anchored for the patient. A
/// proof of this counter plus a proof of every index below it is a proof of *every* record the
/// ledger holds for the patient (each `record/{id}` then says where it lives and whether it is
/// erased).
pub fn patient_record_count(patient: &str) -> Vec<u8> {
    format!("patient-records/{patient}/count").into_bytes()
}

/// `patient-records/{patient}/{n}` → record id (UTF-8) of the patient's `n`-th anchored record,
/// from 0, in anchor order.
pub fn patient_record(patient: &str, n: u64) -> Vec<u8> {
    format!("patient-records/{patient}/{n:020}").into_bytes()
}

/// `study/{study}/count` → counter of HRESCH consents naming the study.
pub fn study_count(study: &str) -> Vec<u8> {
    format!("study/{study}/count").into_bytes()
}

/// `study/{study}/{n}` → consent id (UTF-8) of the study's `n`-th HRESCH consent.
pub fn study_consent(study: &str, n: u64) -> Vec<u8> {
    format!("study/{study}/{n:020}").into_bytes()
}

/// `counter/proposals` → counter: proposals ever submitted (ids 1, 2, ...).
pub fn proposal_counter() -> Vec<u8> {
    b"counter/proposals".to_vec()
}

/// `proposal/{id}` → `Proposal`.
pub fn proposal(id: u64) -> Vec<u8> {
    format!("proposal/{id:020}").into_bytes()
}

/// `proposals/open` → `OpenProposals`: ids of the proposals still open, increasing (bounded by
/// [`crate::limits::MAX_OPEN_PROPOSALS`]; the end of every block scans it to expire proposals).
pub fn open_proposals() -> Vec<u8> {
    b"proposals/open".to_vec()
}

/// `validators/changes/count` → counter of blocks that changed the validator registry.
pub fn validator_change_count() -> Vec<u8> {
    b"validators/changes/count".to_vec()
}

/// `validators/changes/{n}` → counter: the height of the `n`-th block (from 0) that changed the
/// registry. An auditor trusting certificates walks these to hand trust from one set to the next.
pub fn validator_change(n: u64) -> Vec<u8> {
    format!("validators/changes/{n:020}").into_bytes()
}

/// `policy/{insurer}/{policy}/latest` → counter: the latest version.
pub fn policy_latest(insurer: &str, policy: &str) -> Vec<u8> {
    format!("policy/{insurer}/{policy}/latest").into_bytes()
}

/// `policy/{insurer}/{policy}/{version}` → `CoveragePolicy`.
pub fn policy(insurer: &str, policy: &str, version: u64) -> Vec<u8> {
    format!("policy/{insurer}/{policy}/{version:020}").into_bytes()
}

/// `counter/claims` → counter: claims ever submitted (ids `cl-1`, `cl-2`, ...).
pub fn claim_counter() -> Vec<u8> {
    b"counter/claims".to_vec()
}

/// `claim/{id}` → `Claim`.
pub fn claim(id: &str) -> Vec<u8> {
    format!("claim/{id}").into_bytes()
}

/// `claim-service/{hex}` → claim id (UTF-8): one key per (patient, provider, day, service code,
/// modifier) ever billed, see `claims::fingerprint` in the state crate. Rejects duplicate and
/// overlapping claims.
pub fn claim_fingerprint(fingerprint: &[u8; 32]) -> Vec<u8> {
    format!("claim-service/{}", hex::encode(fingerprint)).into_bytes()
}

/// `coverage/{patient}/{insurer}/count` → counter of the patient's enrolments with the insurer.
/// A proof of it plus a proof of every index below it proves the patient's *complete* coverage
/// history with that insurer.
pub fn coverage_count(patient: &str, insurer: &str) -> Vec<u8> {
    format!("coverage/{patient}/{insurer}/count").into_bytes()
}

/// `coverage/{patient}/{insurer}/{n}` → `Coverage` number `n` (from 0).
pub fn coverage(patient: &str, insurer: &str, n: u64) -> Vec<u8> {
    format!("coverage/{patient}/{insurer}/{n:020}").into_bytes()
}

/// `member-tombstone/{id}` → counter: the height of the block whose passed proposal removed
/// member `id`. Member ids are never reused: an AddMember naming a tombstoned id is refused
/// (`MEMBER_ID_RETIRED`), so nothing keyed by the id (practitioners, consents granted to it,
/// claims, records, its review queue) can be inherited by a newcomer.
pub fn member_tombstone(id: &str) -> Vec<u8> {
    format!("member-tombstone/{id}").into_bytes()
}

/// `upgrade/plan` → `UpgradePlan`: the scheduled upgrade not yet applied, if any.
pub fn upgrade_plan() -> Vec<u8> {
    b"upgrade/plan".to_vec()
}

/// `app-version` → counter: the version of the state machine's rules the chain runs (absent
/// means 1, the version every chain starts at); raised only by an applied `UpgradePlan`.
pub fn app_version() -> Vec<u8> {
    b"app-version".to_vec()
}

/// `block-time` → counter: the time (Unix seconds, from its header) of the last block that wrote
/// anything: on a live chain every block, since each carries its checkpoint certificate. A proof
/// of it at a certified height tells a verifier how old the state it reads is (the patient page
/// warns when it is over 2 minutes old).
pub fn block_time() -> Vec<u8> {
    b"block-time".to_vec()
}

/// `consensus/params` → CometBFT's consensus parameters as InitChain gave them (the protobuf
/// `tendermint.types.ConsensusParams` of CometBFT v0.38). Written at genesis and never changed
/// by a tx; an upgrade hands them back to CometBFT with the new app version, because CometBFT
/// v0.38 takes a parameter update only whole.
pub fn consensus_params() -> Vec<u8> {
    b"consensus/params".to_vec()
}

/// `gateway/{member}` → `Gateway`: the member's record-vault endpoint and X25519 box key.
pub fn gateway(member: &str) -> Vec<u8> {
    format!("gateway/{member}").into_bytes()
}

/// `patient-box-key/{patient}` → `PatientBoxKey`: the X25519 key the patient registered
/// (RegisterPatientBoxKey) for the patient's own reads (purpose PATRQT).
pub fn patient_box_key(patient: &str) -> Vec<u8> {
    format!("patient-box-key/{patient}").into_bytes()
}

/// `smart-client/{client id}` → `SmartClient`: a SMART backend client's key, who it acts for
/// and its scopes (RegisterSmartClient, RevokeSmartClient).
pub fn smart_client(client_id: &str) -> Vec<u8> {
    format!("smart-client/{client_id}").into_bytes()
}

/// `nonce/{hex key}/{hex nonce}` → counter: the `valid_until` of the committed unordered tx of
/// `public_key` with `nonce` (see `docs/rules.md`, "Unordered transactions"). Present exactly
/// while that tx could still be valid; a second tx with the nonce is `NONCE_REUSED`.
pub fn nonce(public_key: &[u8; 32], nonce: &[u8]) -> Vec<u8> {
    format!("nonce/{}/{}", hex::encode(public_key), hex::encode(nonce)).into_bytes()
}

/// `nonce-expiry/{valid_until}/count` → counter of the nonces that expire at that second.
pub fn nonce_expiry_count(valid_until: u64) -> Vec<u8> {
    format!("nonce-expiry/{valid_until:020}/count").into_bytes()
}

/// `nonce-expiry/{valid_until}/{n}` → the `n`-th [`nonce`] key (raw bytes) that expires then.
pub fn nonce_expiry(valid_until: u64, n: u64) -> Vec<u8> {
    format!("nonce-expiry/{valid_until:020}/{n:020}").into_bytes()
}

/// `nonce-expiry/pruned` → counter: every expiry second up to this one has been forgotten.
pub fn nonce_pruned() -> Vec<u8> {
    b"nonce-expiry/pruned".to_vec()
}

/// `nonce-expiry/latest` → counter: the latest `valid_until` ever remembered.
pub fn nonce_latest() -> Vec<u8> {
    b"nonce-expiry/latest".to_vec()
}

/// `evidence/{patient}/{n}` → the id (UTF-8) of the one claim that cites access event `n` of
/// the patient as evidence of treatment. Each access event backs at most one claim; a second
/// claim citing it is `EVIDENCE_ALREADY_CLAIMED`, and a break-glass review finds the claim here.
pub fn evidence(patient: &str, n: u64) -> Vec<u8> {
    format!("evidence/{patient}/{n:020}").into_bytes()
}

/// `guardian-change/{patient}` → `PendingPatientChange`: a guardian-set change and/or key
/// rotation signed by the patient's current key while the patient has guardians, waiting for
/// its effective time (block time); absent when none is pending. A recovery cancels it.
pub fn guardian_change(patient: &str) -> Vec<u8> {
    format!("guardian-change/{patient}").into_bytes()
}

/// `params/guardian-change-delay` → counter: seconds of block time a pending guardian-set change
/// or key rotation waits before it takes effect (genesis `guardian_change_delay_secs`; absent
/// means [`DEFAULT_GUARDIAN_CHANGE_DELAY_SECS`]).
pub fn guardian_change_delay() -> Vec<u8> {
    b"params/guardian-change-delay".to_vec()
}

/// `params/custody` → `Custody`: the consortium's threshold custody (genesis `custody`, changed
/// by a passed `SetCustody` proposal); absent: off, records are held by their custodian alone.
pub fn custody() -> Vec<u8> {
    b"params/custody".to_vec()
}

/// `params/web-release` → `WebRelease`: the approved release of the patient and auditor pages
/// (genesis `web_release`, changed by a passed `SetWebRelease` proposal); absent: none approved.
pub fn web_release() -> Vec<u8> {
    b"params/web-release".to_vec()
}

/// The guardian-change delay of a chain whose genesis names none: 48 hours.
pub const DEFAULT_GUARDIAN_CHANGE_DELAY_SECS: u64 = 48 * 3600;

/// The value encoding of counters.
pub fn encode_u64(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// Decodes a counter; `None` if the bytes are not 8 long.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_keys_sort_numerically() {
        assert!(access_event("p", 9) < access_event("p", 10));
        assert!(patient_consent("p", 99) < patient_consent("p", 100));
    }

    #[test]
    fn keys_are_pinned() {
        // These are the wire format of proofs: changing one breaks every verifier in the field.
        assert_eq!(consent("c-17"), b"consent/c-17");
        assert_eq!(
            access_event("pt-ab", 3),
            b"access/pt-ab/00000000000000000003"
        );
        assert_eq!(
            sequence(&[0u8; 32]),
            format!("seq/{}", "00".repeat(32)).as_bytes()
        );
        assert_eq!(proposal(7), b"proposal/00000000000000000007");
        assert_eq!(gateway("lab-b"), b"gateway/lab-b");
        assert_eq!(patient_box_key("p-1"), b"patient-box-key/p-1");
        assert_eq!(smart_client("ehr-1"), b"smart-client/ehr-1");
        assert_eq!(
            nonce(&[1u8; 32], &[2u8; 16]),
            format!("nonce/{}/{}", "01".repeat(32), "02".repeat(16)).as_bytes()
        );
        assert_eq!(
            nonce_expiry(1_700_000_000, 2),
            b"nonce-expiry/00000000001700000000/00000000000000000002"
        );
        assert_eq!(
            coverage("pt-ab", "insurer-c", 2),
            b"coverage/pt-ab/insurer-c/00000000000000000002"
        );
        assert_eq!(
            claim_fingerprint(&[0xab; 32]),
            format!("claim-service/{}", "ab".repeat(32)).as_bytes()
        );
        assert_eq!(
            validator_change(1),
            b"validators/changes/00000000000000000001"
        );
        assert_eq!(
            List::PatientRecords("pt-ab").entry_key(2),
            b"patient-records/pt-ab/00000000000000000002"
        );
        assert_eq!(
            List::PatientRecords("pt-ab").count_key(),
            b"patient-records/pt-ab/count"
        );
    }

    #[test]
    fn evidence_and_pending_keys_are_pinned() {
        assert_eq!(evidence("pt-ab", 3), b"evidence/pt-ab/00000000000000000003");
        assert_eq!(guardian_change("pt-ab"), b"guardian-change/pt-ab");
        assert_eq!(guardian_change_delay(), b"params/guardian-change-delay");
        assert_eq!(custody(), b"params/custody");
        assert_eq!(web_release(), b"params/web-release");
        assert_eq!(auditor("did:medledger:00ff"), b"auditor/did:medledger:00ff");
    }

    #[test]
    fn refused_keys_are_pinned() {
        let list = List::Refused("pt-ab");
        assert_eq!(list.entry_key(3), b"refused/pt-ab/00000000000000000003");
        assert_eq!(list.count_key(), b"refused/pt-ab/count");
        assert_eq!(list.digest_key().unwrap(), b"refused/pt-ab/digest");
        assert_eq!(refused_dropped("pt-ab"), b"refused/pt-ab/dropped");
        assert_eq!(refused_block(), b"refused-block");
    }

    #[test]
    fn report_keys_are_pinned() {
        assert_eq!(report_block(), b"report-block");
        assert_eq!(report_block_of("pt-ab"), b"report-block/pt-ab");
    }

    #[test]
    fn counters_round_trip() {
        assert_eq!(decode_u64(&encode_u64(42)), Some(42));
        assert_eq!(decode_u64(b"short"), None);
    }
}
