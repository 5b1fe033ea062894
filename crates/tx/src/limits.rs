//! Limits on everything that comes from outside. A value over its limit is rejected with
//! [`crate::Code::TxTooLarge`], [`crate::Code::FieldTooLong`] or [`crate::Code::TooManyItems`].

/// Largest accepted transaction, in bytes (envelope included).
pub const MAX_TX_BYTES: usize = 8 * 1024;
/// Longest an unordered tx may stay valid: its `valid_until` is at most this many seconds after
/// the time of the block that applies it (Aptos AIP-123 uses 60 s). The ledger remembers each
/// unordered tx's nonce until then, so this bounds that memory by rate × 60 s.
pub const MAX_UNORDERED_VALIDITY_SECS: u64 = 60;
/// Length of an unordered tx's nonce, in bytes (random: 2^-64 collision odds at 2^32 txs).
pub const UNORDERED_NONCE_LEN: usize = 16;
/// Most txs of patient keys pending in one node's mempool (CheckTx's patients' lane; see
/// `medledger_state::lanes`): consent changes are rare, and patients must not crowd members out.
pub const MEMPOOL_PATIENT_LANE: u64 = 256;
/// Most txs of one patient key pending in one node's mempool.
pub const MEMPOOL_PATIENT_SIGNER: u64 = 16;
/// A patient's reserved allowance: a `RevokeConsent` of a patient with fewer than this many txs
/// pending on a node is admitted even when the patients' lane is full, so a flood of other
/// patient keys can never hold back a revocation. Bounded per patient key, and only members
/// enrol patient keys.
pub const MEMPOOL_PATIENT_RESERVED: u64 = 4;
/// Most txs one member's keys (its admin keys and its practitioners together) may have pending
/// in one node's mempool: one member's flood cannot crowd out another member. With CometBFT's
/// default mempool of 5,000 txs, four members' quotas, the patients' lane and the outsiders'
/// lane fit together (4 × 1,024 + 256 + 32 = 4,384).
pub const MEMPOOL_MEMBER_QUOTA: u64 = 1024;
/// Most bytes one member's keys may have pending in one node's mempool, in blocks (of the
/// block's `max_tx_bytes`, once the node has learnt it from PrepareProposal): a second bound
/// besides [`MEMPOOL_MEMBER_QUOTA`]. Two blocks let one member alone fill every block, while four
/// members' lanes and the patients' quarter of a block fit a mempool of ten blocks, so one
/// member's flood never fills the mempool ahead of the others (issue 23).
pub const MEMPOOL_MEMBER_BLOCKS: u64 = 2;
/// Most txs of one practitioner key pending in one node's mempool (within its member's quota).
pub const MEMPOOL_PRACTITIONER_SIGNER: u64 = 64;
/// Most txs of keys the ledger does not know pending in one node's mempool (only key
/// recoveries, signed by the new key, come from such keys, and CheckTx verifies their guardian
/// approvals first): their own small lane, so outsiders can never fill the patients' lane.
pub const MEMPOOL_OUTSIDER_LANE: u64 = 32;
/// Most txs of one key the ledger does not know pending in one node's mempool: a recovery, and
/// one re-signed copy (a client whose first copy a mempool dropped).
pub const MEMPOOL_OUTSIDER_SIGNER: u64 = 2;
/// Longest chain id (CometBFT's own limit).
pub const MAX_CHAIN_ID_LEN: usize = 50;
/// Longest identifier: member ids, patient ids, consent ids.
pub const MAX_ID_LEN: usize = 64;
/// Longest record id.
pub const MAX_RECORD_ID_LEN: usize = 128;
/// Longest data class (a FHIR resource type such as `MedicationStatement`).
pub const MAX_DATA_CLASS_LEN: usize = 64;
/// Most data classes in one consent.
pub const MAX_DATA_CLASSES: usize = 32;
/// Most purposes in one consent (there are five purpose codes).
pub const MAX_PURPOSES: usize = 5;
/// Most consents one patient may hold, active or revoked. Consent evaluation reads the
/// patient's consents to one grantee, so this bounds the work of every access check.
pub const MAX_CONSENTS_PER_PATIENT: u64 = 1024;
/// Most consents one patient may hold for one grantee.
pub const MAX_CONSENTS_PER_GRANTEE: u64 = 64;
/// Most access events a client reads to verify one history (a larger history is refused by the
/// CLI rather than read without bound).
pub const MAX_HISTORY_READ: u64 = 100_000;
/// Longest free text: reasons, notes, names.
pub const MAX_TEXT_LEN: usize = 512;
/// Most patients one member may enrol in one block. Enrolment writes state for a new key, so it
/// is rationed per member: a real hospital enrols a few patients a minute, and a burst of
/// imports spreads over blocks; an outsider cannot enrol at all.
pub const MAX_ENROLMENTS_PER_BLOCK: u64 = 64;
/// Most specific record ids in one consent.
pub const MAX_RECORD_IDS: usize = 64;
/// Most guardians of a patient.
pub const MAX_GUARDIANS: usize = 16;
/// Most rules in a coverage policy.
pub const MAX_POLICY_RULES: usize = 256;
/// Most items in a claim.
pub const MAX_CLAIM_ITEMS: usize = 64;
/// Most studies' participants listed by one query (a study index is read in full).
pub const MAX_STUDY_PARTICIPANTS: u64 = 100_000;
/// Longest service code in a coverage rule or claim item (CPT and HCPCS codes have 5
/// characters, LOINC up to 8, SNOMED CT ids up to 18 digits).
pub const MAX_SERVICE_CODE_LEN: usize = 32;
/// Most record references in one claim.
pub const MAX_CLAIM_RECORDS: usize = 32;
/// Longest procedure modifier of a claim item (CPT/HCPCS modifiers have 2 characters).
pub const MAX_MODIFIER_LEN: usize = 4;
/// Most diagnoses in one claim (an X12 837 professional claim carries 12).
pub const MAX_CLAIM_DIAGNOSES: usize = 12;
/// Longest diagnosis code: an ICD-10 code, a letter, two characters, a dot and at most four
/// more ("S52.5211" has 8).
pub const MAX_DIAGNOSIS_LEN: usize = 8;
/// Latest day of service of a preauthorization, in days after the block time: services are
/// authorised for the coming year at most.
pub const MAX_PREAUTH_DAYS_AHEAD: u64 = 366;
/// Most practitioners on one claim's care team (each is one state read).
pub const MAX_CLAIM_CARE_TEAM: usize = 8;
/// Most access events one claim cites as evidence of treatment (each is one state read).
pub const MAX_CLAIM_EVIDENCE: usize = 16;
/// Most procedures in one claim (as many as diagnoses).
pub const MAX_CLAIM_PROCEDURES: usize = 12;
/// Longest procedure code (SNOMED CT concept ids have up to 18 digits).
pub const MAX_PROCEDURE_CODE_LEN: usize = 18;
/// Most other coverages one claim records besides its own (each is one state read).
pub const MAX_CLAIM_OTHER_COVERAGE: usize = 3;
/// Oldest evidence of treatment a claim may cite: an access at most this many days before the
/// day of service (and not after it).
pub const MAX_EVIDENCE_AGE_DAYS: u64 = 30;
/// Most enrolments of one patient with one insurer, ended or not. A claim scans them to find the
/// coverage on its day of service, so this bounds that work (insurers are a governed, small set).
pub const MAX_COVERAGES_PER_INSURER: u64 = 64;
/// Length of a SHA-256 digest: the hashes of off-chain free text (appeal reasons, notes).
pub const TEXT_HASH_LEN: usize = 32;
/// Basis points in a whole: a co-pay of `MAX_COPAY_BPS` basis points is the full amount.
pub const MAX_COPAY_BPS: u32 = 10_000;
/// Most governance proposals open at once. Expiry scans the open ones at the end of each block,
/// so this bounds that work.
pub const MAX_OPEN_PROPOSALS: usize = 32;
/// Longest voting period: a proposal's deadline is at most this many blocks ahead of the block
/// that accepts it (further: `VOTING_PERIOD_TOO_LONG`). About one day at one block per second
/// (12 hours at the localnet's 500 ms): long enough for the members' admins to vote, short
/// enough that a proposal nobody votes on frees its open-proposal slot within a day instead of
/// holding it for weeks (governance jamming).
pub const MAX_VOTING_PERIOD: u64 = 86_400;
/// Largest voting power of one validator. With at most 256 validators the total stays far below
/// CometBFT's limit (2^63 / 8), and tallies cannot overflow.
pub const MAX_VALIDATOR_POWER: u64 = 1_000_000;
/// Most open governance proposals one member may have at once (`MEMBER_PROPOSAL_LIMIT`). With
/// `MAX_OPEN_PROPOSALS` = 32, filling every slot takes 16 colluding members, not one admin key;
/// a slot frees when the proposal is decided or expires.
pub const MAX_OPEN_PROPOSALS_PER_MEMBER: usize = 2;
/// Longest gateway endpoint URL (`SetGateway.endpoint`).
pub const MAX_ENDPOINT_LEN: usize = 256;
/// Longest JWK `kid` of a SMART backend client (`RegisterSmartClient.kid`).
pub const MAX_SMART_KID_LEN: usize = 128;
/// Most scopes one SMART backend client may be registered with (`RegisterSmartClient.scopes`):
/// one read and one write scope for each resource the gateway serves fits many times over.
pub const MAX_SMART_SCOPES: usize = 32;
/// Longest SMART scope string (`system/` + a FHIR resource type + `.` + permissions).
pub const MAX_SMART_SCOPE_LEN: usize = 80;
/// Shortest RSA modulus of a SMART client's RS384 key (NIST SP 800-131A: 2048 bits).
pub const MIN_SMART_RSA_BITS: usize = 2048;
/// Longest RSA modulus of a SMART client's RS384 key (bounds what every verify costs).
pub const MAX_SMART_RSA_BITS: usize = 4096;
/// Most holders of one record under threshold custody (`params/custody`, `AnchorRecord.holders`
/// and `share_commitments`): bounds the anchor, the holder checks and the erasure
/// confirmations of every record. Seven member gateways survive any three down at threshold 4.
pub const MAX_HOLDERS: usize = 7;
/// Length of a share commitment in `AnchorRecord.share_commitments` (a compressed curve point or
/// hash; docs/vault.md).
pub const SHARE_COMMITMENT_LEN: usize = 32;
/// Longest version label of a web release (`SetWebRelease.version`, genesis `web_release`).
pub const MAX_RELEASE_VERSION_LEN: usize = 32;
/// Most files in a web release's manifest (docs/privacy.md, "The release hash"): what
/// `medledger web check` fetches from a gateway is bounded by it.
pub const MAX_RELEASE_FILES: usize = 256;
/// Largest file of a web release that `medledger web check` downloads.
pub const MAX_RELEASE_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Most refused access attempts recorded for one patient in one block (`refused/{patient}/…`):
/// a member cannot grow one patient's list faster than this; attempts over it are counted in
/// `refused/{patient}/dropped` only. Only known members' admins and active practitioners write
/// there, and every attempt costs them a sequence number.
pub const MAX_REFUSED_PER_PATIENT_PER_BLOCK: u64 = 4;
/// Most refused access attempts recorded in one block, all patients together (each is a few
/// state writes); attempts over it are counted in their patient's `refused/{patient}/dropped`.
pub const MAX_REFUSED_PER_BLOCK: u64 = 64;

/// Most access reports (ReportAccess) one patient's key records in one block; more are refused
/// with TOO_MANY_REPORTS (153) and may be sent again in a later block.
pub const MAX_REPORTS_PER_PATIENT_PER_BLOCK: u64 = 4;
/// Most access reports recorded in one block, all patients together (each opens a review);
/// more are refused with TOO_MANY_REPORTS (153).
pub const MAX_REPORTS_PER_BLOCK: u64 = 64;

/// Highest app version an upgrade may name (versions go up by one per upgrade).
pub const MAX_APP_VERSION: u64 = 1_000_000;
