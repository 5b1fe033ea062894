//! Stable rejection codes.
//!
//! Every way a transaction can be refused has its own code. Codes are ABCI result codes seen by
//! clients, indexers and auditors, so they are only ever appended: never renumber or reuse one.

use std::fmt;

/// A rejection reason with a stable numeric code (the ABCI `code` of the tx result). The list of
/// codes ([`Code::ALL`]) and their names ([`Code::name`], the variant in SCREAMING_SNAKE_CASE)
/// are derived from the enum, so a new code is one new variant.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[repr(u32)]
pub enum Code {
    /// The bytes are not a protobuf `Tx` with a `TxBody` inside.
    TxDecode = 1,
    /// The tx is larger than [`crate::limits::MAX_TX_BYTES`].
    TxTooLarge = 2,
    /// The tx or its body is not in canonical protobuf form (re-encoding differs).
    NonCanonical = 3,
    /// The public key is not a valid 32-byte Ed25519 key.
    BadPublicKey = 4,
    /// The signature does not verify for this key and body.
    BadSignature = 5,
    /// The body names another chain id.
    WrongChainId = 6,
    /// The sequence number was already used by this signer (a replay).
    SequenceReused = 7,
    /// The sequence number skips ahead of the signer's next one.
    SequenceGap = 8,
    /// The body carries no message.
    MissingMessage = 9,
    /// A field is longer than its limit.
    FieldTooLong = 10,
    /// A list has more items than its limit.
    TooManyItems = 11,
    /// A field has an invalid value (empty, bad characters, unknown enum, bad period).
    InvalidField = 12,
    /// A checkpoint certificate: only a block proposer may include one, first in its block,
    /// and it must certify the state two blocks back with more than 2/3 of the power.
    ProposerOnly = 13,
    /// The signing key belongs to no member or patient, and the message needs one.
    UnknownSigner = 20,
    /// The signer may not send this message.
    NotAuthorized = 21,
    /// A patient with this key is already registered.
    PatientExists = 22,
    /// No patient has this id.
    UnknownPatient = 23,
    /// No member has this id.
    UnknownMember = 24,
    /// No consent has this id.
    UnknownConsent = 25,
    /// The consent belongs to another patient.
    NotConsentOwner = 26,
    /// The consent was already revoked.
    ConsentAlreadyRevoked = 27,
    /// No active consent of the patient permits this actor, data class and purpose now.
    NoPermittingConsent = 28,
    /// The patient holds the maximum number of consents.
    TooManyConsents = 29,
    /// The key already belongs to a member or another patient.
    KeyInUse = 30,
    /// No access event has this patient and index.
    UnknownAccessEvent = 31,
    /// The access event is not a break-glass event.
    NotBreakGlass = 32,
    /// The break-glass event was already reviewed.
    AlreadyReviewed = 33,
    /// No practitioner has this DID.
    UnknownPractitioner = 40,
    /// The practitioner is suspended, revoked, past valid_until, or their member left.
    PractitionerInactive = 41,
    /// The signer is not the admin of the practitioner's member.
    NotPractitionersMember = 42,
    /// The practitioner's role may not do this.
    RoleNotPermitted = 43,
    /// A practitioner with this key is already registered.
    PractitionerExists = 44,
    /// The patient has set no guardians.
    NoGuardians = 45,
    /// Fewer valid guardian approvals than the threshold.
    NotEnoughGuardians = 46,
    /// The node could not read its own state while checking the tx (CheckTx only; try another
    /// node). Never a block result: a node that cannot read its state stops.
    NodeStorage = 50,
    /// No record anchor has this id.
    UnknownRecord = 51,
    /// A record with this id is already anchored.
    RecordExists = 52,
    /// The record was erased: it can be neither read nor erased again.
    RecordErased = 53,
    /// The signer is neither the record's patient nor its custodian.
    NotCustodian = 54,
    /// The record belongs to another patient.
    RecordOfAnotherPatient = 55,
    /// No proposal has this id.
    UnknownProposal = 60,
    /// The proposal was already decided (passed, rejected or failed): votes no longer count.
    ProposalClosed = 61,
    /// The member already voted on this proposal (the proposer's submission is its yes vote).
    AlreadyVoted = 62,
    /// The proposal's deadline height has passed: it expired.
    ProposalExpired = 63,
    /// The deadline is 0 or below the current height (too far ahead: `VotingPeriodTooLong`).
    BadDeadline = 64,
    /// As many proposals as the limit are open; vote on or wait for them first.
    TooManyProposals = 65,
    /// The change would leave no validator, or a total voting power of 0.
    ValidatorSetEmpty = 66,
    /// A member with this id already exists.
    MemberExists = 67,
    /// The validator consensus key or BLS key is already registered.
    ValidatorExists = 68,
    /// The member runs no validator the ledger can update (none, or its consensus key is unknown).
    NoValidator = 69,
    /// The insurer has published no policy with this id (or no such version).
    UnknownPolicy = 70,
    /// The member is not an insurer: only insurers publish policies, receive and decide claims.
    NotInsurer = 71,
    /// The submitting member is not a provider (a hospital or a lab).
    NotProvider = 72,
    /// A claim with the same patient, provider, day of service and service codes exists.
    DuplicateClaim = 73,
    /// No claim has this id.
    UnknownClaim = 74,
    /// The signer's member is not the claim's insurer (decide, pay) or provider (appeal).
    NotClaimParty = 75,
    /// The claim is not PENDING or APPEALED, so there is nothing to decide.
    ClaimNotDecidable = 76,
    /// The claim is not APPROVED or PARTIALLY_APPROVED.
    ClaimNotPayable = 77,
    /// The claim is not DENIED or PARTIALLY_APPROVED, or was appealed once already.
    AppealNotAllowed = 78,
    /// A decision must give exactly one approved amount per item of the claim.
    DecisionMismatch = 79,
    /// An approved amount is more than the item's claimed amount.
    ApprovedExceedsClaimed = 80,
    /// An amount or total does not fit in 64 bits of minor currency units.
    AmountOverflow = 81,
    /// A declared or stored total differs from the sum of its items.
    TotalsMismatch = 82,
    /// The day of service is after the block's time.
    ServiceDateInFuture = 83,
    /// The patient has no coverage (enrolment) under the insurer's policy on the date of service.
    NoCoverage = 84,
    /// The claim cites no access event or record of this provider for this patient (the ledger must know the provider treated the patient).
    NoTreatmentEvidence = 85,
    /// The member already has the most open governance proposals one member may have.
    MemberProposalLimit = 86,
    /// A proposal's deadline is further ahead than the longest voting period.
    VotingPeriodTooLong = 87,
    /// The member id belonged to a removed member; ids are never reused.
    MemberIdRetired = 88,
    /// The data class named for an anchored record is not the anchor's resource type.
    ClassMismatch = 89,
    /// The role may not be vouched for by a member of this kind (clinical roles only under care providers).
    RoleNotForMemberKind = 90,
    /// A break-glass access is reviewed by a privacy officer of another member than the one that broke the glass.
    SelfReview = 91,
    /// The key was retired (a patient's key rotated or recovered away, or a member admin key
    /// replaced or released by governance): it is never registered, enrolled or handed out again.
    KeyRetired = 92,
    /// The member has enrolled the most patients one member may enrol in one block.
    EnrolmentLimit = 93,
    /// A new key's proof of possession (its signature over the key statement) is missing or invalid.
    BadKeyProof = 94,
    /// A key recovery must be signed by the new key it names.
    RecoverySignerMismatch = 95,
    /// A gateway's X25519 box key is not signed by the member admin key that sends it (the
    /// signature over the box-key statement is missing or invalid), or the key is unusable.
    BadBoxKeySignature = 96,
    /// The message must be ordered (by `sequence`): only messages that commute may be sent
    /// unordered (see [`crate::check::may_be_unordered`]).
    UnorderedNotAllowed = 97,
    /// An unordered tx's `valid_until` is before the block's time (it expired: sign a new one)
    /// or more than [`crate::limits::MAX_UNORDERED_VALIDITY_SECS`] after it.
    OutsideValidityWindow = 98,
    /// The signer already used this nonce in a committed unordered tx that is still remembered:
    /// a replay, or a resubmission of a tx that was already applied.
    NonceReused = 99,
    /// CheckTx only: the mempool lane of the signer's kind, or the signer's own share of it, is
    /// full on this node (patients and practitioners are rationed so they cannot crowd out
    /// members; see `docs/performance.md`). Retry after a block. (Tx codes skip 100–109, the
    /// query codes.)
    MempoolLaneFull = 110,
    /// SubmitClaim or DecideClaim citing a break-glass access that no privacy officer has
    /// reviewed yet: the claim waits (PENDING, not decided) until the review; a JUSTIFIED review
    /// makes the access evidence, an UNJUSTIFIED one denies the claim.
    EvidenceUnderReview = 115,
    /// SubmitClaim citing an access event that already backs another claim: each access event
    /// backs at most one claim (`evidence/{patient}/{index}` names it).
    EvidenceAlreadyClaimed = 116,
    /// A claim item's modifier is not one of the CPT/HCPCS modifiers the ledger accepts
    /// ([`crate::rules::claims::CLAIM_MODIFIERS`]).
    UnknownModifier = 117,
    /// RecoverPatientKey with no approvals, signed by the new key of a pending rotation, before
    /// the rotation's effective time (the genesis guardian-change delay after it was signed):
    /// send it again from then on. Until then the patient's guardians can still recover.
    RotationNotDue = 118,
    /// ConfirmErasure of a record whose erasure was not requested: it is not erased (send
    /// EraseRecord first; the custodian confirms after it has destroyed the key).
    ErasureNotRequested = 123,
    /// ConfirmErasure of a single-custodian record whose erasure was confirmed already (its
    /// height is in the anchor). Each holder of a record with holders confirms once instead
    /// ([`Code::HolderAlreadyConfirmed`]).
    ErasureAlreadyConfirmed = 124,
    /// AnchorRecord listing holders whose number or threshold is not the consortium's
    /// `params/custody` (or threshold custody is off: anchor without holders), or a threshold
    /// without holders.
    CustodyMismatch = 125,
    /// AnchorRecord listing the same holder member twice.
    DuplicateHolder = 126,
    /// AnchorRecord whose first holder is not the custodian (the signer's member).
    CustodianNotFirst = 127,
    /// AnchorRecord naming a holder member that has registered no gateway (`gateway/{member}`,
    /// SetGateway): it has no box key to hold a share under.
    HolderWithoutGateway = 128,
    /// AnchorRecord whose share commitments are not exactly `threshold` entries of 32 bytes.
    BadShareCommitments = 129,
    /// ConfirmErasure of a record with holders, signed for a member that is not one of them.
    NotHolder = 130,
    /// ConfirmErasure by a holder that already confirmed the destruction of its share.
    HolderAlreadyConfirmed = 131,
    /// Threshold custody outside its bounds (SetCustody or genesis `custody`): give
    /// 2 <= threshold <= holders <= 7, or both 0 to switch it off.
    InvalidCustody = 132,
    /// RegisterSmartClient whose public key is unusable: `alg` unset, an ES384 key that is not a
    /// SEC1 uncompressed point on P-384, an RS384 key whose modulus is not 2048 to 4096 bits or
    /// whose exponent is not odd and at least 3, or fields of the other algorithm set.
    BadSmartKey = 133,
    /// RegisterSmartClient with a scope the ledger does not accept: give
    /// `system/<Resource>.<read|write|*>` or `system/<Resource>.<cruds letters in order>`, each
    /// once (docs/fhir.md, "Authorization").
    BadSmartScope = 134,
    /// RegisterSmartClient naming a client id that another member registered, or that was
    /// revoked: client ids are never reused (pick another).
    SmartClientIdTaken = 135,
    /// RevokeSmartClient naming no registered client, or one already revoked.
    UnknownSmartClient = 136,
    /// SetWebRelease (or genesis `web_release`) whose release hash is not exactly 32 bytes
    /// (64 hex characters in genesis): the SHA-256 of the pages' manifest.
    BadReleaseHash = 137,
    /// SetWebRelease (or genesis `web_release`) whose version label is empty, longer than
    /// [`crate::limits::MAX_RELEASE_VERSION_LEN`] or has a character outside `A-Z a-z 0-9 . _ -`.
    BadReleaseVersion = 138,
    /// SetWebRelease proposing the release hash that `params/web-release` already holds (at
    /// submission; at execution the proposal FAILS with this reason).
    ReleaseUnchanged = 139,
    /// RegisterPatientBoxKey whose `box_key` is not an X25519 public key a patient's seed could
    /// derive: 32 bytes, a canonical u-coordinate (below 2^255 - 19) of a point of the curve
    /// (not of its twist) and not of small order (so not all zero).
    BadPatientBoxKey = 140,
    /// A patient's key naming another patient: RegisterPatientBoxKey and a patient's own read
    /// (LogAccess, purpose PATRQT) name the signer's own patient id only; a guardian does not
    /// register a box key for, or read as, the patient they guard.
    NotOwnPatientId = 141,
    /// RegisterPatientBoxKey, or a LogAccess with purpose PATRQT ("patient requested"), signed
    /// by a member's admin or a practitioner: only the patient's own key sends them (a member
    /// reads under a consent, for its own purpose).
    PatientOnly = 142,
    /// A patient's own read (LogAccess, purpose PATRQT) before the patient registered a box
    /// key (`patient-box-key/{patient}`): holders would have nothing to seal the shares to.
    /// Send RegisterPatientBoxKey first.
    NoPatientBoxKey = 143,
    /// A LogAccess signed by a patient's key with a purpose other than PATRQT, or an action
    /// other than READ: a patient logs only their own reads, as "patient requested".
    PatientPurposeOnly = 144,
    /// SubmitClaim with a diagnosis that is not an ICD-10 code: a letter, a digit, a digit or
    /// letter, then optionally a dot and 1-4 digits or letters, upper case (`J45.909`).
    BadDiagnosisCode = 145,
    /// SubmitClaim naming on its care team a DID that is not a registered practitioner of the
    /// claim's provider who is ACTIVE and within their credential's validity now.
    CareTeamNotOfProvider = 146,
    /// PayClaim of a preauthorization (`SubmitClaim.preauthorization`): it approves services
    /// before they are given and bills nothing; the claim for the services is paid.
    PreauthorizationNotPayable = 147,
    /// SubmitClaim with a procedure whose system is not ICD-10-PCS, SNOMED CT or CPT, or whose
    /// code is not of its system's form (`ProcedureSystem` in claims.proto).
    BadProcedureCode = 148,
    /// SubmitClaim whose payee is not PROVIDER or SUBSCRIBER (or unspecified, read as PROVIDER).
    BadPayee = 149,
    /// ReportAccess of the patient's own read (purpose PATRQT, actor the patient): there is
    /// nobody else's access to dispute.
    OwnAccessNotReportable = 150,
    /// ReportAccess of an access event the patient reported already: one report per event; its
    /// review is on the event (`report_review`).
    AlreadyReported = 151,
    /// ReportAccess over the bounds of reports recorded in one block:
    /// [`crate::limits::MAX_REPORTS_PER_PATIENT_PER_BLOCK`] per patient or
    /// [`crate::limits::MAX_REPORTS_PER_BLOCK`] in all. Send it again in a later block.
    TooManyReports = 153,
    /// ReviewReport of an access event with no open report: never reported, or its report was
    /// reviewed already.
    NoOpenReport = 154,
    /// SubmitClaim listing an other coverage twice, or the claim's own insurer and policy as
    /// other coverage.
    DuplicateCoverage = 155,
    /// SubmitClaim naming as other coverage an insurer that is not a registered insurer member.
    OtherInsurerUnknown = 156,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: &'static [Code] = <Code as strum::VariantArray>::VARIANTS;

    /// The ABCI result code.
    pub fn value(self) -> u32 {
        self as u32
    }

    /// The code for an ABCI result code, if it is one of ours.
    pub fn from_value(value: u32) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.value() == value)
    }

    /// A short stable name, e.g. `SEQUENCE_REUSED`, used in logs and CLI output.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The name of a result code as a tx's answer carries it: `OK` for 0, the code's name, or
    /// `UNKNOWN_{n}` for a number this build does not know (a newer node's).
    pub fn name_of(value: u32) -> String {
        match value {
            0 => "OK".into(),
            v => Code::from_value(v).map_or_else(|| format!("UNKNOWN_{v}"), |c| c.name().into()),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.value())
    }
}

/// A refused transaction: a stable [`Code`] and a message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TxError {
    /// The stable code.
    pub code: Code,
    /// What was wrong and, where it helps, what to do about it.
    pub message: String,
}

impl TxError {
    /// A rejection with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        TxError {
            code,
            message: message.into(),
        }
    }
}

/// Stable codes of failed `abci_query` answers (a separate range from tx codes). An absent value
/// is not a failure: it is answered with code 0, an empty value and a proof of absence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum QueryCode {
    /// The path names no key (see `docs`/README for paths).
    BadPath = 100,
    /// The height is above the last committed height.
    FutureHeight = 101,
    /// The node could not read its state (an operator problem, not the caller's).
    Internal = 102,
    /// The height is below what this node keeps (pruned; see `docs/reliability.md`).
    Pruned = 103,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_listed_once_in_order_with_distinct_names() {
        let values: Vec<u32> = Code::ALL.iter().map(|c| c.value()).collect();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "Code::ALL must be in increasing order: {values:?}"
        );
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len(), "two codes share a name");
        assert!(Code::ALL
            .iter()
            .all(|c| Code::from_value(c.value()) == Some(*c)));
    }

    /// The README's table is the codes' public reference: every code has its row, with its name.
    #[test]
    fn the_readme_lists_every_code_by_number_and_name() {
        let readme = include_str!("../../../README.md");
        for c in Code::ALL {
            let row = format!("| {} | {} |", c.value(), c.name());
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }
}
