//! Claims and coverage policies on a real ledger: who may publish, submit, decide, pay and
//! appeal; every refusal with its code; adjudication, co-pays and totals; and property tests that
//! totals always equal the sums of items (checked against a naive u128 model) and that no amount
//! ever panics, only refuses with AMOUNT_OVERFLOW.

#![allow(clippy::unwrap_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use medledger_state::domain::claims::{adjudicate, check_totals, copay, totals};
use medledger_state::view::StateRead;
use medledger_state::Event;
use medledger_tx::pb::{
    self, tx_body::Msg, Claim, ClaimItem, ClaimStatus, CoveragePolicy, CoverageRule,
    PractitionerRole, PractitionerStatus, Purpose,
};
use medledger_tx::{ids, keys, Code};
use proptest::prelude::*;

use crate::common::{self, CHAIN, T0};

/// A day of service before every block of the tests (after the setup block).
const SERVICE_DAY: u64 = T0 - 86_400;
/// Seconds per day.
const DAY: u64 = 86_400;
/// The time of the setup block: 20 days before the tests' blocks, so the accesses it logs are
/// evidence of treatment for services on SERVICE_DAY and the days before it.
const SETUP_TIME: u64 = T0 - 20 * DAY;
/// Alice's access events logged at setup: by hospital-a (0) and by lab-b (1), then
/// [`SPARE_VISITS`] more by hospital-a (2, 3, ...); bob's: by hospital-a (0). Claims cite them as
/// evidence of treatment. Each access backs at most one claim, so [`World::sign`] hands every
/// claim of alice that cites `HOSPITAL_VISIT` the next hospital visit no claim has cited yet.
const HOSPITAL_VISIT: u64 = 0;
const LAB_VISIT: u64 = 1;
/// Extra hospital visits of alice logged at setup, one per claim a test files.
const SPARE_VISITS: u64 = 30;

/// Genesis members: (id, kind). Admin key i is `[100 + i; 32]`.
const MEMBERS: [(&str, &str); 5] = [
    ("hospital-a", "hospital"),
    ("lab-b", "lab"),
    ("insurer-c", "insurer"),
    ("insurer-d", "insurer"),
    ("research-e", "research"),
];
const HOSPITAL: usize = 0;
const LAB: usize = 1;
const INSURER: usize = 2;
const OTHER_INSURER: usize = 3;
const RESEARCH: usize = 4;

fn admin(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[100 + i as u8; 32])
}

fn patient_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[1 + i as u8; 32])
}

fn patient(i: usize) -> String {
    ids::patient_id(&patient_key(i).verifying_key().to_bytes())
}

/// A practitioner: their key and the member and role they are registered with.
#[derive(Clone, Copy)]
struct Staff {
    seed: u8,
    member: usize,
    role: PractitionerRole,
}

/// Practitioners every world registers.
const PHYSICIAN: Staff = Staff {
    seed: 150,
    member: HOSPITAL,
    role: PractitionerRole::Physician,
};
const RESEARCHER: Staff = Staff {
    seed: 151,
    member: HOSPITAL,
    role: PractitionerRole::Researcher,
};
const ADJUSTER: Staff = Staff {
    seed: 152,
    member: INSURER,
    role: PractitionerRole::ClaimsAdjuster,
};
/// An insurer's staff member who is not a claims adjuster (an insurer cannot have physicians).
const INSURER_OFFICER: Staff = Staff {
    seed: 153,
    member: INSURER,
    role: PractitionerRole::PrivacyOfficer,
};
const OTHER_ADJUSTER: Staff = Staff {
    seed: 154,
    member: OTHER_INSURER,
    role: PractitionerRole::ClaimsAdjuster,
};
const SUSPENDED_ADJUSTER: Staff = Staff {
    seed: 155,
    member: INSURER,
    role: PractitionerRole::ClaimsAdjuster,
};
const SUSPENDED_PHYSICIAN: Staff = Staff {
    seed: 156,
    member: HOSPITAL,
    role: PractitionerRole::Physician,
};
const STAFF: [Staff; 7] = [
    PHYSICIAN,
    RESEARCHER,
    ADJUSTER,
    INSURER_OFFICER,
    OTHER_ADJUSTER,
    SUSPENDED_ADJUSTER,
    SUSPENDED_PHYSICIAN,
];

impl Staff {
    fn key(self) -> SigningKey {
        SigningKey::from_bytes(&[self.seed; 32])
    }

    fn did(self) -> String {
        ids::practitioner_did(&self.key().verifying_key().to_bytes())
    }
}

/// The result of one tx.
#[derive(Debug)]
struct Outcome {
    code: u32,
    log: String,
    events: Vec<Event>,
}

impl Outcome {
    fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {}", self.log);
        self
    }

    fn attr(&self, name: &str) -> String {
        self.events
            .iter()
            .flat_map(|e| &e.attributes)
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// A chain with the members above, driven one block per call.
struct World {
    chain: common::Chain,
    /// The last committed height.
    height: u64,
    /// Alice's hospital visits (access indices) no claim has been given yet, in order.
    visits: std::collections::VecDeque<u64>,
}

impl World {
    fn empty() -> World {
        let mut g = common::Genesis::new();
        for (i, (id, kind)) in MEMBERS.iter().enumerate() {
            g = g.member(id, kind, &admin(i));
        }
        World {
            chain: g.chain(),
            height: 0,
            visits: std::collections::VecDeque::new(),
        }
    }

    /// Patients 0 (alice) and 1 (bob) registered; every practitioner registered (two of them
    /// suspended); insurer-c's policy "gold" (see [`gold`]); alice's record r-alice and bob's
    /// r-bob anchored by hospital-a; alice's HPAYMT consent (class Claim) to insurer-c; alice
    /// and bob enrolled by insurer-c in gold (open-ended, coverage 0 of each); alice's and bob's
    /// TREAT consents to hospital-a (and alice's to lab-b) and the accesses they permit (see
    /// [`HOSPITAL_VISIT`]), all in a block at [`SETUP_TIME`].
    fn new() -> World {
        let mut w = World::empty();
        let mut txs = vec![
            w.sign(&admin(HOSPITAL), register(&patient_key(0))),
            w.sign(&admin(HOSPITAL), register(&patient_key(1))),
        ];
        for s in STAFF {
            let msg = Msg::RegisterPractitioner(pb::RegisterPractitioner {
                public_key: s.key().verifying_key().to_bytes().to_vec(),
                role: s.role as i32,
                licence_hash: vec![s.seed; 32],
                key_proof: medledger_tx::keyproof::prove(
                    &s.key(),
                    CHAIN,
                    medledger_tx::keyproof::REGISTER_PRACTITIONER,
                    MEMBERS[s.member].0,
                )
                .to_vec(),
                ..Default::default()
            });
            txs.push(w.sign(&admin(s.member), msg));
        }
        txs.push(w.sign(&admin(INSURER), publish("gold", gold())));
        txs.push(w.sign(&admin(HOSPITAL), anchor("r-alice", 0)));
        txs.push(w.sign(&admin(HOSPITAL), anchor("r-bob", 1)));
        txs.push(w.sign(
            &patient_key(0),
            consent("insurer-c", Purpose::Hpaymt, "Claim"),
        ));
        for p in [0, 1] {
            txs.push(w.sign(&admin(INSURER), enrol(p, "gold", 0, 0)));
            txs.push(w.sign(&patient_key(p), consent("hospital-a", Purpose::Treat, "*")));
        }
        txs.push(w.sign(&patient_key(0), consent("lab-b", Purpose::Treat, "*")));
        txs.push(w.sign(&admin(HOSPITAL), visit(0)));
        txs.push(w.sign(&admin(LAB), visit(0)));
        txs.push(w.sign(&admin(HOSPITAL), visit(1)));
        for _ in 0..SPARE_VISITS {
            txs.push(w.sign(&admin(HOSPITAL), visit(0)));
        }
        w.visits = std::iter::once(HOSPITAL_VISIT)
            .chain(2..2 + SPARE_VISITS)
            .collect();
        for s in [SUSPENDED_ADJUSTER, SUSPENDED_PHYSICIAN] {
            let msg = Msg::SetPractitionerStatus(pb::SetPractitionerStatus {
                did: s.did(),
                status: PractitionerStatus::Suspended as i32,
                reason_hash: vec![1; 32],
            });
            txs.push(w.sign(&admin(s.member), msg));
        }
        for (i, r) in w.block_at(SETUP_TIME, &txs).into_iter().enumerate() {
            assert_eq!(r.code, 0, "setup tx {i}: {}", r.log);
        }
        w
    }

    /// Signs `msg` with `key`'s next sequence. A claim of alice citing just `HOSPITAL_VISIT`
    /// cites the next hospital visit no claim was given instead (each access backs one claim).
    fn sign(&mut self, key: &SigningKey, mut msg: Msg) -> Vec<u8> {
        if let Msg::SubmitClaim(m) = &mut msg {
            if m.patient_id == patient(0) && m.evidence == [HOSPITAL_VISIT] {
                if let Some(v) = self.visits.pop_front() {
                    m.evidence = vec![v];
                }
            }
        }
        self.chain.tx(key, msg)
    }

    fn block(&mut self, txs: &[Vec<u8>]) -> Vec<Outcome> {
        self.block_at(T0 + self.height + 1, txs)
    }

    /// A block at `time` (unix seconds).
    fn block_at(&mut self, time: u64, txs: &[Vec<u8>]) -> Vec<Outcome> {
        let r = self.chain.block_at(time, txs);
        self.height = self.chain.height - 1;
        // A tx refused by its stateless checks consumes no sequence: resynchronise like a client
        // that reads its next sequence from the node.
        self.chain.resync();
        r.tx_results
            .into_iter()
            .map(|t| Outcome {
                code: t.code,
                log: t.log,
                events: t.events,
            })
            .collect()
    }

    /// One tx in its own block.
    fn tx(&mut self, key: &SigningKey, msg: Msg) -> Outcome {
        let tx = self.sign(key, msg);
        self.block(&[tx]).pop().unwrap()
    }

    /// Asserts that `key` sending `msg` is refused with `code`.
    fn refused(&mut self, key: &SigningKey, msg: Msg, code: Code) {
        let r = self.tx(key, msg);
        assert_eq!(Code::from_value(r.code), Some(code), "log: {}", r.log);
        assert!(!r.log.is_empty(), "a refusal says why");
    }

    fn claim(&self, id: &str) -> Claim {
        self.chain
            .ledger()
            .store()
            .get_msg(&keys::claim(id))
            .unwrap()
            .unwrap_or_else(|| panic!("no claim {id}"))
    }

    fn policy(&self, insurer: &str, id: &str, version: u64) -> Option<CoveragePolicy> {
        self.chain
            .ledger()
            .store()
            .get_msg(&keys::policy(insurer, id, version))
            .unwrap()
    }

    /// Submits `msg` as hospital-a's admin and returns the new claim's id.
    fn submitted(&mut self, msg: Msg) -> String {
        self.tx(&admin(HOSPITAL), msg).ok().attr("claim_id")
    }
}

/// hospital-a's enrolment of the patient holding `p` (signed by `admin(HOSPITAL)`).
fn register(p: &SigningKey) -> Msg {
    Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
        p,
        CHAIN,
        "hospital-a",
    ))
}

fn anchor(record: &str, patient_index: usize) -> Msg {
    Msg::AnchorRecord(pb::AnchorRecord {
        record_id: record.into(),
        patient_id: patient(patient_index),
        resource_type: "Encounter".into(),
        content_hash: vec![7; 32],
        size: 10,
        key_id: "k".into(),
        holders: vec![],
        threshold: 0,
        share_commitments: vec![],
    })
}

fn consent(grantee: &str, purpose: Purpose, class: &str) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: vec![class.into()],
        purposes: vec![purpose as i32],
        ..Default::default()
    })
}

/// insurer-c enrols patient `p` in `policy` for [start, end).
fn enrol(p: usize, policy: &str, start: u64, end: u64) -> Msg {
    Msg::EnrolCoverage(pb::EnrolCoverage {
        patient_id: patient(p),
        policy_id: policy.into(),
        start,
        end,
    })
}

/// A read of patient `p`'s record for treatment (the signer's member must hold a TREAT consent).
fn visit(p: usize) -> Msg {
    Msg::LogAccess(pb::LogAccess {
        patient_id: patient(p),
        record_id: if p == 0 { "r-alice" } else { "r-bob" }.into(),
        data_class: "Encounter".into(),
        purpose: Purpose::Treat as i32,
        action: 0,
    })
}

fn rule(
    code: &str,
    price_cap: u64,
    copay_fixed: u64,
    copay_bps: u32,
    preauth: bool,
) -> CoverageRule {
    CoverageRule {
        service_code: code.into(),
        covered: true,
        price_cap,
        copay_fixed,
        copay_bps,
        preauth_required: preauth,
    }
}

/// insurer-c's "gold" policy: an office visit (cap 150.00, co-pay 20.00), a metabolic panel
/// (no cap, co-pay 10 %), an MRI (needs pre-authorisation), physiotherapy (not covered).
fn gold() -> Vec<CoverageRule> {
    vec![
        rule("99213", 15_000, 2_000, 0, false),
        rule("80053", 0, 0, 1_000, false),
        rule("70551", 100_000, 0, 0, true),
        CoverageRule {
            service_code: "97110".into(),
            ..Default::default()
        },
    ]
}

fn publish(id: &str, rules: Vec<CoverageRule>) -> Msg {
    Msg::PublishPolicy(pb::PublishPolicy {
        policy_id: id.into(),
        rules,
    })
}

fn item(code: &str, quantity: u64, unit_price: u64) -> ClaimItem {
    ClaimItem {
        service_code: code.into(),
        quantity,
        unit_price,
        modifier: String::new(),
    }
}

/// A claim by hospital-a for alice to insurer-c under "gold", its total computed.
fn claim_msg(items: Vec<ClaimItem>) -> pb::SubmitClaim {
    // 0 when the items overflow: the ledger must refuse that claim before comparing totals.
    let total = items
        .iter()
        .try_fold(0u64, |s, i| {
            s.checked_add(i.quantity.checked_mul(i.unit_price)?)
        })
        .unwrap_or(0);
    pb::SubmitClaim {
        patient_id: patient(0),
        insurer: "insurer-c".into(),
        policy_id: "gold".into(),
        service_date: SERVICE_DAY,
        items,
        record_ids: vec!["r-alice".into()],
        total,
        evidence: vec![HOSPITAL_VISIT],
        ..Default::default()
    }
}

fn submit(items: Vec<ClaimItem>) -> Msg {
    Msg::SubmitClaim(claim_msg(items))
}

/// A claim for services `days` before SERVICE_DAY: each service is billed once a day, so a test
/// that files the same code twice files it on another day.
fn submit_before(days: u64, items: Vec<ClaimItem>) -> Msg {
    let mut m = claim_msg(items);
    m.service_date -= days * DAY;
    Msg::SubmitClaim(m)
}

fn submit_with(f: impl FnOnce(&mut pb::SubmitClaim)) -> Msg {
    let mut m = claim_msg(vec![item("99213", 1, 10_000)]);
    f(&mut m);
    Msg::SubmitClaim(m)
}

/// A claim that auto-adjudication leaves PENDING: one visit over its cap, one MRI.
fn pending_claim() -> Msg {
    submit(vec![item("99213", 1, 20_000), item("70551", 1, 90_000)])
}

fn decide(id: &str, amounts: &[u64]) -> Msg {
    Msg::DecideClaim(pb::DecideClaim {
        claim_id: id.into(),
        approved_amounts: amounts.to_vec(),
        note_hash: sha256(b"reviewed"),
    })
}

fn sha256(text: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(text).to_vec()
}

fn pay(id: &str) -> Msg {
    Msg::PayClaim(pb::PayClaim {
        claim_id: id.into(),
        payment_reference: "SEPA-0001".into(),
    })
}

fn appeal(id: &str) -> Msg {
    Msg::AppealClaim(pb::AppealClaim {
        claim_id: id.into(),
        reason_hash: sha256(b"pre-authorised by phone, ref 42"),
    })
}

fn status(c: &Claim) -> ClaimStatus {
    ClaimStatus::try_from(c.status).unwrap()
}

fn reasons(c: &Claim) -> Vec<Vec<&str>> {
    c.decisions
        .iter()
        .map(|d| d.reasons.iter().map(String::as_str).collect())
        .collect()
}

mod policies {
    use super::*;

    #[test]
    fn an_insurers_admin_publishes_versioned_policies() {
        let mut w = World::new();
        assert_eq!(
            w.policy("insurer-c", "gold", 1).map(|p| p.rules),
            Some(gold())
        );
        let silver = vec![rule("99213", 9_000, 0, 2_000, false)];
        let r = w.tx(&admin(INSURER), publish("gold", silver.clone()));
        r.ok();
        assert_eq!(
            (r.attr("insurer"), r.attr("policy_id"), r.attr("version")),
            ("insurer-c".into(), "gold".into(), "2".into())
        );
        let v2 = w.policy("insurer-c", "gold", 2).unwrap();
        assert_eq!(
            (v2.version, v2.rules, v2.published_height),
            (2, silver, w.height)
        );
        assert_eq!(
            w.policy("insurer-c", "gold", 1).map(|p| p.rules),
            Some(gold()),
            "old versions stay as published"
        );
        assert_eq!(
            w.chain
                .ledger()
                .store()
                .get_u64(&keys::policy_latest("insurer-c", "gold"))
                .unwrap(),
            2
        );
        // Each insurer has its own namespace of policy ids.
        w.tx(&admin(OTHER_INSURER), publish("gold", gold())).ok();
        assert_eq!(
            w.policy("insurer-d", "gold", 1).map(|p| p.insurer),
            Some("insurer-d".into())
        );
    }

    #[test]
    fn only_an_insurers_admin_publishes_policies() {
        let mut w = World::new();
        w.refused(&admin(HOSPITAL), publish("p", gold()), Code::NotInsurer);
        w.refused(&admin(RESEARCH), publish("p", gold()), Code::NotInsurer);
        w.refused(&ADJUSTER.key(), publish("p", gold()), Code::NotAuthorized);
        w.refused(&patient_key(0), publish("p", gold()), Code::NotAuthorized);
        w.refused(
            &SigningKey::from_bytes(&[9; 32]),
            publish("p", gold()),
            Code::UnknownSigner,
        );
        w.refused(&admin(INSURER), publish("p", vec![]), Code::InvalidField);
        assert_eq!(w.policy("insurer-c", "p", 1), None);
    }
}

mod submission {
    use super::*;

    #[test]
    fn a_fully_covered_claim_is_approved_automatically() {
        let mut w = World::new();
        // Visit under its cap (co-pay 20.00 fixed) and a panel with 10 % co-pay.
        let r = w.tx(
            &admin(HOSPITAL),
            submit(vec![item("99213", 1, 12_000), item("80053", 2, 4_999)]),
        );
        r.ok();
        assert_eq!(
            (
                r.attr("claim_id"),
                r.attr("status"),
                r.attr("total_approved")
            ),
            ("cl-1".into(), "APPROVED".into(), "21998".into())
        );
        let c = w.claim("cl-1");
        assert_eq!(status(&c), ClaimStatus::Approved);
        assert_eq!(
            (
                c.provider.as_str(),
                c.submitted_by.as_str(),
                c.insurer.as_str()
            ),
            ("hospital-a", "hospital-a", "insurer-c")
        );
        assert_eq!(
            (
                c.policy_version,
                c.consent_id.as_str(),
                c.decided_by.as_str()
            ),
            (1, "c-1", "policy")
        );
        assert_eq!(
            c.decisions
                .iter()
                .map(|d| (d.approved_amount, d.copay))
                .collect::<Vec<_>>(),
            vec![(12_000, 2_000), (9_998, 999)]
        );
        assert_eq!(reasons(&c), vec![Vec::<&str>::new(), vec![]]);
        assert_eq!(
            (
                c.total_claimed,
                c.total_approved,
                c.total_copay,
                c.total_benefit
            ),
            (21_998, 21_998, 2_999, 18_999)
        );
        assert_eq!((c.submitted_height, c.decided_height), (w.height, w.height));
        assert_eq!(check_totals(&c), Ok(()));
        assert_eq!(
            w.chain
                .ledger()
                .store()
                .get_u64(&keys::claim_counter())
                .unwrap(),
            1
        );
    }

    #[test]
    fn a_claim_over_a_cap_uncovered_or_needing_preauthorisation_waits_for_the_insurer() {
        let mut w = World::new();
        let id = w.submitted(submit(vec![
            item("99213", 2, 20_000), // cap 150.00 a unit binds
            item("70551", 1, 90_000), // needs pre-authorisation
            item("97110", 3, 5_000),  // not covered by its rule
            item("11111", 1, 100),    // no rule at all
        ]));
        let c = w.claim(&id);
        assert_eq!(status(&c), ClaimStatus::Pending);
        assert_eq!(
            c.decisions
                .iter()
                .map(|d| (d.approved_amount, d.copay))
                .collect::<Vec<_>>(),
            vec![(30_000, 2_000), (0, 0), (0, 0), (0, 0)]
        );
        assert_eq!(
            reasons(&c),
            vec![
                vec!["PRICE_CAP"],
                vec!["PREAUTH_REQUIRED"],
                vec!["NOT_COVERED"],
                vec!["NOT_COVERED"]
            ]
        );
        assert_eq!(
            (
                c.total_claimed,
                c.total_approved,
                c.total_copay,
                c.total_benefit
            ),
            (145_100, 30_000, 2_000, 28_000)
        );
        assert_eq!((c.decided_height, c.decided_by.as_str()), (0, ""));
    }

    #[test]
    fn a_fixed_copay_above_the_approved_amount_is_capped_at_it() {
        let mut w = World::new();
        let id = w.submitted(submit(vec![item("99213", 1, 1_500)]));
        let c = w.claim(&id);
        assert_eq!(
            (status(&c), c.decisions[0].copay, c.total_benefit),
            (ClaimStatus::Approved, 1_500, 0)
        );
    }

    #[test]
    fn claims_follow_the_latest_policy_version() {
        let mut w = World::new();
        w.tx(
            &admin(INSURER),
            publish("gold", vec![rule("99213", 0, 0, 5_000, false)]),
        )
        .ok();
        let id = w.submitted(submit(vec![item("99213", 1, 20_000)]));
        let c = w.claim(&id);
        assert_eq!(
            (c.policy_version, status(&c), c.total_copay),
            (2, ClaimStatus::Approved, 10_000)
        );
    }

    #[test]
    fn a_providers_clinician_may_submit_and_is_recorded() {
        let mut w = World::new();
        let id = w
            .tx(&PHYSICIAN.key(), submit(vec![item("99213", 1, 100)]))
            .ok()
            .attr("claim_id");
        let c = w.claim(&id);
        assert_eq!(
            (c.provider, c.submitted_by),
            ("hospital-a".to_string(), PHYSICIAN.did())
        );
    }

    #[test]
    fn a_preauthorization_waits_for_the_insurer_is_never_paid_and_bills_nothing() {
        let mut w = World::new();
        let preauth = |day: u64| {
            submit_with(|m| {
                m.preauthorization = true;
                m.evidence = vec![];
                m.service_date = day;
            })
        };
        // A visit the policy would approve at once, 30 days ahead, with no evidence: PENDING.
        let ahead = T0 + 30 * DAY;
        let id = w.submitted(preauth(ahead));
        let c = w.claim(&id);
        assert!(c.preauthorization);
        assert_eq!(status(&c), ClaimStatus::Pending);
        assert_eq!((c.decided_height, c.decided_by.as_str()), (0, ""));
        // More than a year ahead: refused; a claim (not a preauthorization) ahead: refused too.
        w.refused(
            &admin(HOSPITAL),
            preauth(T0 + 400 * DAY),
            Code::ServiceDateInFuture,
        );
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.service_date = ahead),
            Code::ServiceDateInFuture,
        );
        // A preauthorization citing evidence: refused (its services are not given yet).
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| {
                m.preauthorization = true;
                m.service_date = ahead;
            }),
            Code::InvalidField,
        );
        // The insurer approves it; it is still never paid.
        w.tx(&ADJUSTER.key(), decide(&id, &[10_000])).ok();
        assert_eq!(status(&w.claim(&id)), ClaimStatus::Approved);
        w.refused(&admin(INSURER), pay(&id), Code::PreauthorizationNotPayable);
        // A preauthorization of the service day bills nothing: the claim for the service given
        // that day is no duplicate of it, and is approved and paid as any claim.
        let second = w.submitted(preauth(SERVICE_DAY));
        let claim = w.submitted(submit(vec![item("99213", 1, 10_000)]));
        assert_eq!(
            (id.as_str(), second.as_str(), claim.as_str()),
            ("cl-1", "cl-2", "cl-3")
        );
        assert_eq!(status(&w.claim(&claim)), ClaimStatus::Approved);
        w.tx(&admin(INSURER), pay(&claim)).ok();
    }

    #[test]
    fn a_claim_records_its_diagnoses_and_its_care_team_of_the_providers_active_practitioners() {
        let mut w = World::new();
        let id = w.submitted(submit_with(|m| {
            m.diagnoses = vec!["J45.909".into(), "E11.65".into()];
            m.care_team = vec![PHYSICIAN.did(), RESEARCHER.did()];
        }));
        let c = w.claim(&id);
        assert_eq!(c.diagnoses, ["J45.909", "E11.65"]);
        assert_eq!(c.care_team, [PHYSICIAN.did(), RESEARCHER.did()]);
        // Another member's practitioner, a suspended one, a DID nobody registered, a member id:
        // each refused, wherever it stands on the team, before the services are looked at (the
        // same service and day as the claim above would otherwise be a duplicate).
        let unknown = ids::practitioner_did(&[7; 32]);
        for stranger in [
            ADJUSTER.did(),
            SUSPENDED_PHYSICIAN.did(),
            unknown,
            "hospital-a".to_string(),
        ] {
            w.refused(
                &admin(HOSPITAL),
                submit_with(|m| m.care_team = vec![PHYSICIAN.did(), stranger.clone()]),
                Code::CareTeamNotOfProvider,
            );
        }
        // A practitioner submitting names their own colleagues only, too.
        w.refused(
            &PHYSICIAN.key(),
            submit_with(|m| m.care_team = vec![OTHER_ADJUSTER.did()]),
            Code::CareTeamNotOfProvider,
        );
        // A diagnosis that is no ICD-10 code, and one listed twice, are refused statelessly.
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.diagnoses = vec!["j45.909".into()]),
            Code::BadDiagnosisCode,
        );
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.diagnoses = vec!["J45.909".into(), "J45.909".into()]),
            Code::InvalidField,
        );
        assert_eq!(
            w.chain
                .ledger()
                .store()
                .get_u64(&keys::claim_counter())
                .unwrap(),
            1,
            "refused claims take no id"
        );
    }

    #[test]
    fn a_claim_records_its_payee_procedures_and_other_coverage_and_pays_the_payee() {
        use pb::{ClaimProcedure, OtherCoverage, Payee, ProcedureSystem};
        let procedure = |system: ProcedureSystem, code: &str| ClaimProcedure {
            system: system as i32,
            code: code.into(),
        };
        let other = |insurer: &str, policy: &str| OtherCoverage {
            insurer: insurer.into(),
            policy_id: policy.into(),
        };
        let mut w = World::new();
        // No payee: the provider is paid.
        let plain = w.submitted(submit_before(2, vec![item("99213", 1, 12_000)]));
        assert_eq!(w.claim(&plain).payee, Payee::Provider as i32);
        let r = w.tx(&admin(INSURER), pay(&plain));
        r.ok();
        assert_eq!(r.attr("paid_to"), "hospital-a");
        assert_eq!(w.claim(&plain).paid_to, "hospital-a");

        let id = w.submitted(submit_with(|m| {
            m.payee = Payee::Subscriber as i32;
            m.procedures = vec![
                procedure(ProcedureSystem::Cpt, "99213"),
                procedure(ProcedureSystem::SnomedCt, "80146002"),
                procedure(ProcedureSystem::Icd10Pcs, "0DB60ZZ"),
            ];
            // The other insurer, and the claim's insurer under another policy.
            m.other_coverage = vec![other("insurer-d", "silver"), other("insurer-c", "basic")];
        }));
        let c = w.claim(&id);
        assert_eq!(c.payee, Payee::Subscriber as i32);
        assert_eq!(
            c.procedures
                .iter()
                .map(|p| p.code.as_str())
                .collect::<Vec<_>>(),
            ["99213", "80146002", "0DB60ZZ"]
        );
        assert_eq!(
            c.other_coverage,
            [other("insurer-d", "silver"), other("insurer-c", "basic")]
        );
        // Adjudicated under its own policy only: approved as a claim without other coverage.
        assert_eq!(
            (status(&c), c.policy_id.as_str()),
            (ClaimStatus::Approved, "gold")
        );
        let r = w.tx(&ADJUSTER.key(), pay(&id));
        r.ok();
        assert_eq!(r.attr("paid_to"), patient(0));
        assert_eq!(w.claim(&id).paid_to, patient(0));

        // Each refusal with its code, before the services are looked at (the claim above billed
        // this day's 99213 already).
        for (f, code) in [
            (
                Box::new(|m: &mut pb::SubmitClaim| m.payee = 7)
                    as Box<dyn Fn(&mut pb::SubmitClaim)>,
                Code::BadPayee,
            ),
            (
                Box::new(|m: &mut pb::SubmitClaim| {
                    m.procedures = vec![procedure(ProcedureSystem::Icd10Pcs, "0DBI0ZZ")]
                }),
                Code::BadProcedureCode,
            ),
            (
                Box::new(|m: &mut pb::SubmitClaim| {
                    m.procedures = vec![procedure(ProcedureSystem::Unspecified, "99213")]
                }),
                Code::BadProcedureCode,
            ),
            (
                Box::new(|m: &mut pb::SubmitClaim| {
                    m.procedures = vec![
                        procedure(ProcedureSystem::Cpt, "99213"),
                        procedure(ProcedureSystem::Cpt, "99213"),
                    ]
                }),
                Code::InvalidField,
            ),
            (
                Box::new(|m: &mut pb::SubmitClaim| {
                    m.other_coverage = vec![other("insurer-c", "gold")]
                }),
                Code::DuplicateCoverage,
            ),
            (
                Box::new(|m: &mut pb::SubmitClaim| {
                    m.other_coverage = vec![other("insurer-d", "a"), other("insurer-d", "a")]
                }),
                Code::DuplicateCoverage,
            ),
            (
                Box::new(|m: &mut pb::SubmitClaim| {
                    m.other_coverage = (0..4)
                        .map(|i| other("insurer-d", &format!("p{i}")))
                        .collect()
                }),
                Code::TooManyItems,
            ),
            // A hospital, a research member and nobody are no insurers.
            (
                Box::new(|m: &mut pb::SubmitClaim| {
                    m.other_coverage = vec![other("hospital-a", "silver")]
                }),
                Code::OtherInsurerUnknown,
            ),
            (
                Box::new(|m: &mut pb::SubmitClaim| {
                    m.other_coverage = vec![other("insurer-d", "a"), other("research-e", "b")]
                }),
                Code::OtherInsurerUnknown,
            ),
            (
                Box::new(|m: &mut pb::SubmitClaim| {
                    m.other_coverage = vec![other("insurer-z", "silver")]
                }),
                Code::OtherInsurerUnknown,
            ),
        ] {
            w.refused(&admin(HOSPITAL), submit_with(|m| f(m)), code);
        }
        assert_eq!(
            w.chain
                .ledger()
                .store()
                .get_u64(&keys::claim_counter())
                .unwrap(),
            2,
            "refused claims take no id"
        );
    }

    #[test]
    fn a_lab_is_a_provider() {
        let mut w = World::new();
        w.tx(
            &admin(LAB),
            submit_with(|m| {
                m.items = vec![item("80053", 1, 100)];
                m.total = 100;
                m.evidence = vec![LAB_VISIT];
            }),
        )
        .ok();
    }

    #[test]
    fn only_a_providers_admin_or_active_clinician_submits() {
        let mut w = World::new();
        let msg = || submit(vec![item("99213", 1, 100)]);
        w.refused(&RESEARCHER.key(), msg(), Code::RoleNotPermitted);
        w.refused(
            &SUSPENDED_PHYSICIAN.key(),
            msg(),
            Code::PractitionerInactive,
        );
        w.refused(&admin(RESEARCH), msg(), Code::NotProvider);
        w.refused(&admin(INSURER), msg(), Code::NotProvider);
        w.refused(&ADJUSTER.key(), msg(), Code::NotProvider);
        w.refused(&patient_key(0), msg(), Code::NotAuthorized);
        w.refused(
            &SigningKey::from_bytes(&[9; 32]),
            msg(),
            Code::UnknownSigner,
        );
        assert_eq!(
            w.chain
                .ledger()
                .store()
                .get_u64(&keys::claim_counter())
                .unwrap(),
            0,
            "refused claims take no id"
        );
    }

    #[test]
    fn a_claim_names_a_known_insurer_patient_policy_and_a_past_day() {
        let mut w = World::new();
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.insurer = "lab-b".into()),
            Code::NotInsurer,
        );
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.insurer = "nobody".into()),
            Code::UnknownMember,
        );
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.patient_id = "pt-nobody".into()),
            Code::UnknownPatient,
        );
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.policy_id = "platinum".into()),
            Code::UnknownPolicy,
        );
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.service_date = T0 + 1_000),
            Code::ServiceDateInFuture,
        );
    }

    #[test]
    fn a_claim_needs_the_patients_hpaymt_consent_covering_claims_to_that_insurer() {
        let mut w = World::new();
        let bob = |m: &mut pb::SubmitClaim| {
            m.patient_id = patient(1);
            m.record_ids = vec!["r-bob".into()];
        };
        // Bob has no consent; then consents that miss one condition each.
        w.refused(
            &admin(HOSPITAL),
            submit_with(bob),
            Code::NoPermittingConsent,
        );
        w.tx(
            &patient_key(1),
            consent("insurer-c", Purpose::Treat, "Claim"),
        )
        .ok();
        w.tx(
            &patient_key(1),
            consent("insurer-c", Purpose::Hpaymt, "Observation"),
        )
        .ok();
        w.tx(
            &patient_key(1),
            consent("insurer-d", Purpose::Hpaymt, "Claim"),
        )
        .ok();
        w.tx(
            &patient_key(1),
            consent(&ADJUSTER.did(), Purpose::Hpaymt, "Claim"),
        )
        .ok();
        w.refused(
            &admin(HOSPITAL),
            submit_with(bob),
            Code::NoPermittingConsent,
        );
        // A wildcard class covers claims; its revocation stops the next claim.
        let id = w
            .tx(&patient_key(1), consent("insurer-c", Purpose::Hpaymt, "*"))
            .ok()
            .attr("consent_id");
        let claim = w.submitted(submit_with(bob));
        assert_eq!(w.claim(&claim).consent_id, id);
        w.tx(
            &patient_key(1),
            Msg::RevokeConsent(pb::RevokeConsent { consent_id: id }),
        )
        .ok();
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| {
                bob(m);
                m.service_date -= 86_400
            }),
            Code::NoPermittingConsent,
        );
    }

    #[test]
    fn record_references_must_be_anchored_records_of_the_patient_not_erased() {
        let mut w = World::new();
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.record_ids = vec!["r-unknown".into()]),
            Code::UnknownRecord,
        );
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.record_ids = vec!["r-bob".into()]),
            Code::RecordOfAnotherPatient,
        );
        w.tx(
            &patient_key(0),
            Msg::EraseRecord(pb::EraseRecord {
                record_id: "r-alice".into(),
                reason_hash: vec![2; 32],
            }),
        )
        .ok();
        w.refused(&admin(HOSPITAL), submit_with(|_| {}), Code::RecordErased);
        w.submitted(submit_with(|m| m.record_ids.clear()));
    }

    #[test]
    fn the_same_services_for_the_same_patient_and_day_are_billed_once() {
        let mut w = World::new();
        let first = w.submitted(submit(vec![item("99213", 1, 100), item("80053", 1, 50)]));
        // Other order, quantities, prices, time of day, or insurer: still the same services.
        let again = |m: &mut pb::SubmitClaim| {
            m.items = vec![item("80053", 3, 70), item("99213", 2, 10)];
            m.total = 230;
            m.service_date += 3_600;
        };
        w.refused(&admin(HOSPITAL), submit_with(again), Code::DuplicateClaim);
        w.tx(
            &patient_key(0),
            consent("insurer-d", Purpose::Hpaymt, "Claim"),
        )
        .ok();
        w.tx(&admin(OTHER_INSURER), publish("gold", gold())).ok();
        w.tx(&admin(OTHER_INSURER), enrol(0, "gold", 0, 0)).ok();
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| {
                again(m);
                m.insurer = "insurer-d".into()
            }),
            Code::DuplicateClaim,
        );
        w.refused(&PHYSICIAN.key(), submit_with(again), Code::DuplicateClaim);
        // Another day or another provider is another claim.
        w.submitted(submit_with(|m| {
            again(m);
            m.service_date -= 86_400
        }));
        w.tx(
            &admin(LAB),
            submit_with(|m| {
                again(m);
                m.evidence = vec![LAB_VISIT];
            }),
        )
        .ok();
        assert_eq!(first, "cl-1");
        assert_eq!(
            w.chain
                .ledger()
                .store()
                .get_u64(&keys::claim_counter())
                .unwrap(),
            3
        );
    }

    /// Issue 11, hole 1 as found live: `99213:1:5000` auto-approved, then
    /// `99213:1:5000 --item 99213:1:5000` for the same patient, insurer and day was accepted and
    /// auto-approved for 10 000 more. Now every service is billed once a day, whatever the split.
    #[test]
    fn double_billing_by_splitting_a_service_into_items_is_a_duplicate() {
        let mut w = World::new();
        let first = w.submitted(submit(vec![item("99213", 1, 5_000)]));
        assert_eq!(status(&w.claim(&first)), ClaimStatus::Approved);
        w.refused(
            &admin(HOSPITAL),
            submit(vec![item("99213", 1, 5_000), item("99213", 1, 5_000)]),
            Code::DuplicateClaim,
        );
        w.refused(
            &admin(HOSPITAL),
            submit(vec![item("99213", 2, 5_000)]),
            Code::DuplicateClaim,
        );
        // A split on a fresh day is one service in two items: accepted, keyed once.
        let split = w.submitted(submit_before(
            1,
            vec![item("99213", 1, 5_000), item("99213", 1, 5_000)],
        ));
        assert_eq!(w.claim(&split).total_claimed, 10_000);
        w.refused(
            &admin(HOSPITAL),
            submit_before(1, vec![item("99213", 1, 5_000)]),
            Code::DuplicateClaim,
        );
        assert_eq!(
            w.chain
                .ledger()
                .store()
                .get_u64(&keys::claim_counter())
                .unwrap(),
            2
        );
    }

    /// A claim that adds new services to ones already billed that day is refused as a whole:
    /// one key per service, so any overlap is a duplicate; the new service alone is accepted.
    #[test]
    fn a_claim_overlapping_a_billed_service_is_a_duplicate() {
        let mut w = World::new();
        w.submitted(submit(vec![item("99213", 1, 5_000)]));
        w.refused(
            &admin(HOSPITAL),
            submit(vec![item("80053", 1, 1_000), item("99213", 1, 5_000)]),
            Code::DuplicateClaim,
        );
        w.submitted(submit(vec![item("80053", 1, 1_000)]));
        w.refused(
            &admin(HOSPITAL),
            submit(vec![item("80053", 1, 1_000)]),
            Code::DuplicateClaim,
        );
    }

    /// A real second service on one day carries a modifier (CPT 76, repeat procedure): it is
    /// another service for duplicates, but never approved automatically.
    #[test]
    fn a_repeat_service_needs_a_modifier_and_waits_for_the_insurer() {
        let mut w = World::new();
        w.submitted(submit(vec![item("99213", 1, 5_000)]));
        let repeat = ClaimItem {
            modifier: "76".into(),
            ..item("99213", 1, 5_000)
        };
        let id = w.submitted(submit(vec![repeat.clone()]));
        let c = w.claim(&id);
        assert_eq!(status(&c), ClaimStatus::Pending);
        assert_eq!(reasons(&c), vec![vec!["MODIFIER_REVIEW"]]);
        w.refused(&admin(HOSPITAL), submit(vec![repeat]), Code::DuplicateClaim);
    }

    #[test]
    fn a_declared_total_must_equal_the_items_and_fit_in_64_bits() {
        let mut w = World::new();
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.total += 1),
            Code::TotalsMismatch,
        );
        let huge = |m: &mut pb::SubmitClaim| {
            m.items = vec![item("80053", 1, u64::MAX), item("99213", 1, 1)];
            m.total = 0;
        };
        w.refused(&admin(HOSPITAL), submit_with(huge), Code::AmountOverflow);
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| {
                m.items = vec![item("80053", 2, u64::MAX / 2 + 1)];
                m.total = 0
            }),
            Code::AmountOverflow,
        );
        // The largest total that fits is fine, and its 10 % co-pay does not overflow either.
        let id = w.submitted(submit_with(|m| {
            m.items = vec![item("80053", 1, u64::MAX)];
            m.total = u64::MAX
        }));
        let c = w.claim(&id);
        assert_eq!(
            (status(&c), c.total_approved, c.total_copay),
            (ClaimStatus::Approved, u64::MAX, u64::MAX / 10)
        );
    }
}

mod decisions {
    use super::*;

    #[test]
    fn an_adjuster_approves_a_pending_claim_in_full() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        let r = w.tx(&ADJUSTER.key(), decide(&id, &[20_000, 90_000]));
        r.ok();
        assert_eq!(
            (r.attr("status"), r.attr("decided_by")),
            ("APPROVED".into(), ADJUSTER.did())
        );
        let c = w.claim(&id);
        assert_eq!(status(&c), ClaimStatus::Approved);
        // Co-pays follow the policy: 20.00 fixed on the visit; the MRI's rule has none.
        assert_eq!(
            c.decisions
                .iter()
                .map(|d| (d.approved_amount, d.copay))
                .collect::<Vec<_>>(),
            vec![(20_000, 2_000), (90_000, 0)]
        );
        assert_eq!(
            reasons(&c),
            vec![
                vec!["PRICE_CAP", "ADJUSTER_APPROVED"],
                vec!["PREAUTH_REQUIRED", "ADJUSTER_APPROVED"]
            ]
        );
        assert_eq!(
            (c.total_approved, c.total_copay, c.total_benefit),
            (110_000, 2_000, 108_000)
        );
        assert_eq!(
            (c.decided_height, c.decided_by, c.decision_note_hash),
            (w.height, ADJUSTER.did(), sha256(b"reviewed"))
        );
    }

    #[test]
    fn the_insurers_admin_approves_part_of_a_claim() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        w.tx(&admin(INSURER), decide(&id, &[15_000, 0])).ok();
        let c = w.claim(&id);
        assert_eq!(
            (status(&c), c.decided_by.as_str(), c.total_approved),
            (ClaimStatus::PartiallyApproved, "insurer-c", 15_000)
        );
        assert_eq!(
            reasons(&c),
            vec![
                vec!["PRICE_CAP", "ADJUSTER_REDUCED"],
                vec!["PREAUTH_REQUIRED", "ADJUSTER_DENIED"]
            ]
        );
    }

    #[test]
    fn approving_nothing_denies_the_claim() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        w.tx(&ADJUSTER.key(), decide(&id, &[0, 0])).ok();
        let c = w.claim(&id);
        assert_eq!(
            (status(&c), c.total_approved, c.total_copay, c.total_benefit),
            (ClaimStatus::Denied, 0, 0, 0)
        );
    }

    #[test]
    fn a_decision_gives_one_amount_per_item_none_above_its_claim() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        w.refused(&ADJUSTER.key(), decide(&id, &[1]), Code::DecisionMismatch);
        w.refused(
            &ADJUSTER.key(),
            decide(&id, &[1, 2, 3]),
            Code::DecisionMismatch,
        );
        w.refused(&ADJUSTER.key(), decide(&id, &[]), Code::DecisionMismatch);
        w.refused(
            &ADJUSTER.key(),
            decide(&id, &[20_001, 0]),
            Code::ApprovedExceedsClaimed,
        );
        assert_eq!(status(&w.claim(&id)), ClaimStatus::Pending);
    }

    #[test]
    fn only_the_claims_insurer_its_admin_or_an_active_adjuster_decides() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        w.refused(
            &admin(OTHER_INSURER),
            decide(&id, &[0, 0]),
            Code::NotClaimParty,
        );
        w.refused(
            &OTHER_ADJUSTER.key(),
            decide(&id, &[0, 0]),
            Code::NotClaimParty,
        );
        w.refused(&admin(HOSPITAL), decide(&id, &[0, 0]), Code::NotClaimParty);
        w.refused(
            &INSURER_OFFICER.key(),
            decide(&id, &[0, 0]),
            Code::RoleNotPermitted,
        );
        w.refused(
            &SUSPENDED_ADJUSTER.key(),
            decide(&id, &[0, 0]),
            Code::PractitionerInactive,
        );
        w.refused(&patient_key(0), decide(&id, &[0, 0]), Code::NotAuthorized);
        w.refused(
            &SigningKey::from_bytes(&[9; 32]),
            decide(&id, &[0, 0]),
            Code::UnknownSigner,
        );
        w.refused(
            &ADJUSTER.key(),
            decide("cl-99", &[0, 0]),
            Code::UnknownClaim,
        );
        assert_eq!(status(&w.claim(&id)), ClaimStatus::Pending);
    }

    #[test]
    fn only_pending_or_appealed_claims_are_decided() {
        let mut w = World::new();
        let approved = w.submitted(submit(vec![item("99213", 1, 100)]));
        w.refused(
            &ADJUSTER.key(),
            decide(&approved, &[0]),
            Code::ClaimNotDecidable,
        );
        let denied = w.submitted(submit(vec![item("70551", 1, 100)]));
        w.tx(&ADJUSTER.key(), decide(&denied, &[0])).ok();
        w.refused(
            &ADJUSTER.key(),
            decide(&denied, &[100]),
            Code::ClaimNotDecidable,
        );
        w.tx(&ADJUSTER.key(), pay(&approved)).ok();
        w.refused(
            &ADJUSTER.key(),
            decide(&approved, &[100]),
            Code::ClaimNotDecidable,
        );
    }

    #[test]
    fn decisions_use_the_policy_version_the_claim_was_filed_under() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        // v2 would charge a 50 % co-pay on visits; the claim was filed under v1 (20.00 fixed).
        w.tx(
            &admin(INSURER),
            publish("gold", vec![rule("99213", 0, 0, 5_000, false)]),
        )
        .ok();
        w.tx(&ADJUSTER.key(), decide(&id, &[20_000, 0])).ok();
        assert_eq!(w.claim(&id).decisions[0].copay, 2_000);
    }
}

mod payments {
    use super::*;

    #[test]
    fn approved_and_partially_approved_claims_are_paid_once() {
        let mut w = World::new();
        let approved = w.submitted(submit(vec![item("99213", 1, 12_000)]));
        let r = w.tx(&ADJUSTER.key(), pay(&approved));
        r.ok();
        assert_eq!(
            (r.attr("amount"), r.attr("payment_reference")),
            ("10000".into(), "SEPA-0001".into())
        );
        let c = w.claim(&approved);
        assert_eq!(
            (status(&c), c.payment_reference.as_str(), c.paid_height),
            (ClaimStatus::Paid, "SEPA-0001", w.height)
        );
        w.refused(&ADJUSTER.key(), pay(&approved), Code::ClaimNotPayable);

        let partial = w.submitted(submit_before(
            1,
            vec![item("99213", 1, 20_000), item("70551", 1, 90_000)],
        ));
        w.tx(&ADJUSTER.key(), decide(&partial, &[15_000, 0])).ok();
        w.tx(&admin(INSURER), pay(&partial)).ok();
        assert_eq!(status(&w.claim(&partial)), ClaimStatus::Paid);
    }

    #[test]
    fn pending_denied_and_appealed_claims_are_not_paid() {
        let mut w = World::new();
        let pending = w.submitted(pending_claim());
        w.refused(&ADJUSTER.key(), pay(&pending), Code::ClaimNotPayable);
        let denied = w.submitted(submit_before(1, vec![item("70551", 1, 100)]));
        w.tx(&ADJUSTER.key(), decide(&denied, &[0])).ok();
        w.refused(&ADJUSTER.key(), pay(&denied), Code::ClaimNotPayable);
        w.tx(&admin(HOSPITAL), appeal(&denied)).ok();
        w.refused(&ADJUSTER.key(), pay(&denied), Code::ClaimNotPayable);
    }

    #[test]
    fn only_the_claims_insurer_its_admin_or_an_active_adjuster_pays() {
        let mut w = World::new();
        let id = w.submitted(submit(vec![item("99213", 1, 100)]));
        w.refused(&admin(OTHER_INSURER), pay(&id), Code::NotClaimParty);
        w.refused(&OTHER_ADJUSTER.key(), pay(&id), Code::NotClaimParty);
        w.refused(&admin(HOSPITAL), pay(&id), Code::NotClaimParty);
        w.refused(&PHYSICIAN.key(), pay(&id), Code::RoleNotPermitted);
        w.refused(&INSURER_OFFICER.key(), pay(&id), Code::RoleNotPermitted);
        w.refused(
            &SUSPENDED_ADJUSTER.key(),
            pay(&id),
            Code::PractitionerInactive,
        );
        w.refused(&patient_key(0), pay(&id), Code::NotAuthorized);
        w.refused(&ADJUSTER.key(), pay("cl-99"), Code::UnknownClaim);
        assert_eq!(status(&w.claim(&id)), ClaimStatus::Approved);
    }
}

mod appeals {
    use super::*;

    #[test]
    fn the_provider_appeals_a_denial_once_and_the_insurer_decides_again() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        w.tx(&ADJUSTER.key(), decide(&id, &[0, 0])).ok();
        let r = w.tx(&PHYSICIAN.key(), appeal(&id));
        r.ok();
        assert_eq!(r.attr("by"), PHYSICIAN.did());
        let c = w.claim(&id);
        assert_eq!(
            (status(&c), c.appealed, c.appeal_reason_hash),
            (
                ClaimStatus::Appealed,
                true,
                sha256(b"pre-authorised by phone, ref 42")
            )
        );
        w.tx(&ADJUSTER.key(), decide(&id, &[15_000, 90_000])).ok();
        let c = w.claim(&id);
        assert_eq!(
            (status(&c), c.total_approved, c.appealed),
            (ClaimStatus::PartiallyApproved, 105_000, true)
        );
        // Partially approved again, but the one appeal is used.
        w.refused(&admin(HOSPITAL), appeal(&id), Code::AppealNotAllowed);
        w.tx(&ADJUSTER.key(), pay(&id)).ok();
    }

    #[test]
    fn a_partial_approval_may_be_appealed() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        w.tx(&ADJUSTER.key(), decide(&id, &[15_000, 0])).ok();
        w.tx(&admin(HOSPITAL), appeal(&id)).ok();
        assert_eq!(status(&w.claim(&id)), ClaimStatus::Appealed);
    }

    #[test]
    fn pending_approved_paid_and_appealed_claims_are_not_appealed() {
        let mut w = World::new();
        let pending = w.submitted(pending_claim());
        w.refused(&admin(HOSPITAL), appeal(&pending), Code::AppealNotAllowed);
        let approved = w.submitted(submit_before(1, vec![item("99213", 1, 100)]));
        w.refused(&admin(HOSPITAL), appeal(&approved), Code::AppealNotAllowed);
        w.tx(&ADJUSTER.key(), pay(&approved)).ok();
        w.refused(&admin(HOSPITAL), appeal(&approved), Code::AppealNotAllowed);
        w.tx(&ADJUSTER.key(), decide(&pending, &[0, 0])).ok();
        w.tx(&admin(HOSPITAL), appeal(&pending)).ok();
        w.refused(&admin(HOSPITAL), appeal(&pending), Code::AppealNotAllowed);
    }

    #[test]
    fn only_the_claims_provider_its_admin_or_an_active_clinician_appeals() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        w.tx(&ADJUSTER.key(), decide(&id, &[0, 0])).ok();
        w.refused(&admin(LAB), appeal(&id), Code::NotClaimParty);
        w.refused(&admin(INSURER), appeal(&id), Code::NotClaimParty);
        w.refused(&RESEARCHER.key(), appeal(&id), Code::RoleNotPermitted);
        w.refused(
            &SUSPENDED_PHYSICIAN.key(),
            appeal(&id),
            Code::PractitionerInactive,
        );
        w.refused(&patient_key(0), appeal(&id), Code::NotAuthorized);
        w.refused(&admin(HOSPITAL), appeal("cl-99"), Code::UnknownClaim);
        assert_eq!(status(&w.claim(&id)), ClaimStatus::Denied);
    }
}

/// A naive reference of adjudication in u128: what each item is approved for and its co-pay,
/// and whether the claim is approved automatically.
fn reference(rules: &[CoverageRule], items: &[ClaimItem]) -> (Vec<(u128, u128)>, bool) {
    let mut auto = true;
    let per_item = items
        .iter()
        .map(|it| {
            let claimed = u128::from(it.quantity) * u128::from(it.unit_price);
            let rule = rules
                .iter()
                .find(|r| r.service_code == it.service_code)
                .filter(|r| r.covered);
            let Some(r) = rule else {
                auto = false;
                return (0, 0);
            };
            if r.preauth_required {
                auto = false;
                return (0, 0);
            }
            let cap = if r.price_cap == 0 {
                u128::MAX
            } else {
                u128::from(it.quantity) * u128::from(r.price_cap)
            };
            if cap < claimed {
                auto = false;
            }
            let approved = claimed.min(cap);
            let copay = if r.copay_bps != 0 {
                approved * u128::from(r.copay_bps) / 10_000
            } else {
                u128::from(r.copay_fixed).min(approved)
            };
            (approved, copay)
        })
        .collect();
    (per_item, auto)
}

const CODES: [&str; 4] = ["a", "b", "c", "d"];

/// Amounts that reach the edges of u64: small, large, and near the maximum.
fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..1_000u64,
        0..u64::MAX,
        (u64::MAX - 1_000)..=u64::MAX,
        Just(u64::MAX / 2 + 1)
    ]
}

fn rule_strategy() -> impl Strategy<Value = CoverageRule> {
    (
        0..CODES.len(),
        any::<bool>(),
        amount(),
        amount(),
        0..=10_000u32,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(c, covered, cap, fixed, bps, use_bps, preauth)| {
            if !covered {
                return CoverageRule {
                    service_code: CODES[c].into(),
                    ..Default::default()
                };
            }
            let (copay_fixed, copay_bps) = if use_bps { (0, bps) } else { (fixed, 0) };
            CoverageRule {
                service_code: CODES[c].into(),
                covered,
                price_cap: cap,
                copay_fixed,
                copay_bps,
                preauth_required: preauth,
            }
        })
}

fn rules_strategy() -> impl Strategy<Value = Vec<CoverageRule>> {
    prop::collection::vec(rule_strategy(), 1..5).prop_map(|rules| {
        // One rule per code, as a published policy has.
        let mut seen = std::collections::BTreeSet::new();
        rules
            .into_iter()
            .filter(|r| seen.insert(r.service_code.clone()))
            .collect()
    })
}

fn items_strategy() -> impl Strategy<Value = Vec<ClaimItem>> {
    prop::collection::vec(
        (0..CODES.len() + 1, 1..=u64::MAX, amount()).prop_map(|(c, q, p)| {
            let q = if q % 2 == 0 { q % 8 + 1 } else { q }; // half small quantities, half any
            item(CODES.get(c).copied().unwrap_or("unlisted"), q, p)
        }),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, .. ProptestConfig::default() })]

    /// Adjudication equals the naive u128 reference, co-pay ≤ approved ≤ claimed per item, and
    /// totals equal the sums of items, or are refused with AMOUNT_OVERFLOW exactly when a sum
    /// does not fit in a u64.
    #[test]
    fn adjudication_matches_the_reference_and_totals_equal_the_sums(rules in rules_strategy(), items in items_strategy()) {
        let fits = |v: u128| u64::try_from(v).is_ok();
        let claimed: Vec<u128> = items.iter().map(|i| u128::from(i.quantity) * u128::from(i.unit_price)).collect();
        match adjudicate(&rules, &items) {
            Err(e) => {
                prop_assert_eq!(e.code, Code::AmountOverflow);
                prop_assert!(claimed.iter().any(|c| !fits(*c)), "refused although every item fits");
            }
            Ok(a) => {
                prop_assert!(claimed.iter().all(|c| fits(*c)));
                // Only now: the reference's products fit in u128 once every item fits in u64.
                let (expected, auto) = reference(&rules, &items);
                prop_assert_eq!(a.auto_approve, auto);
                for ((d, (approved, copay)), c) in a.decisions.iter().zip(&expected).zip(&claimed) {
                    prop_assert_eq!((u128::from(d.approved_amount), u128::from(d.copay)), (*approved, *copay));
                    prop_assert!(d.copay <= d.approved_amount && u128::from(d.approved_amount) <= *c);
                }
                let sum = |f: &dyn Fn(usize) -> u128| (0..items.len()).map(f).sum::<u128>();
                let total_claimed = sum(&|i| claimed[i]);
                match totals(&items, &a.decisions) {
                    Ok(t) => {
                        prop_assert_eq!(u128::from(t.claimed), total_claimed);
                        prop_assert_eq!(u128::from(t.approved), sum(&|i| expected[i].0));
                        prop_assert_eq!(u128::from(t.copay), sum(&|i| expected[i].1));
                        prop_assert_eq!(t.benefit, t.approved - t.copay);
                    }
                    Err(e) => {
                        prop_assert_eq!(e.code, Code::AmountOverflow);
                        prop_assert!(!fits(total_claimed));
                    }
                }
            }
        }
    }

    /// A co-pay is never more than the approved amount, for any rule and amount.
    #[test]
    fn copay_never_exceeds_the_approved_amount(rule in rule_strategy(), approved in amount()) {
        prop_assert!(copay(Some(&rule), approved) <= approved);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Through the whole ledger, on two nodes: every stored claim's totals equal the sums of its
    /// items after submission and after a decision, no amount panics a node (refusals carry
    /// AMOUNT_OVERFLOW or APPROVED_EXCEEDS_CLAIMED), and both nodes compute the same app hash.
    #[test]
    fn stored_claims_always_total_their_items_on_every_node(
        rules in rules_strategy(),
        claims in prop::collection::vec((items_strategy(), prop::collection::vec(amount(), 6)), 1..4),
    ) {
        let mut a = World::empty();
        let mut b = World::empty();
        let setup = |w: &mut World| {
            let txs = vec![
                w.sign(&admin(HOSPITAL), register(&patient_key(0))),
                w.sign(&patient_key(0), consent("insurer-c", Purpose::Hpaymt, "Claim")),
                w.sign(&admin(INSURER), publish("gold", rules.clone())),
                w.sign(&admin(INSURER), enrol(0, "gold", 0, 0)),
                w.sign(&admin(HOSPITAL), anchor("r-alice", 0)),
                w.sign(&patient_key(0), consent("hospital-a", Purpose::Treat, "*")),
                w.sign(&admin(HOSPITAL), visit(0)),
                w.sign(&admin(HOSPITAL), visit(0)),
                w.sign(&admin(HOSPITAL), visit(0)),
                w.sign(&admin(HOSPITAL), visit(0)),
            ];
            w.visits = (0..4).collect();
            w.block_at(SETUP_TIME, &txs)
        };
        for r in setup(&mut a).into_iter().chain(setup(&mut b)) {
            prop_assert_eq!(r.code, 0, "{}", r.log);
        }
        for (day, (items, picks)) in claims.iter().enumerate() {
            let total = items.iter().try_fold(0u64, |s, i| s.checked_add(i.quantity.checked_mul(i.unit_price)?));
            let mut m = claim_msg(items.clone());
            m.total = total.unwrap_or(0);
            m.record_ids.clear();
            m.service_date = SERVICE_DAY - day as u64 * 86_400;
            let msg = Msg::SubmitClaim(m);
            let (ra, rb) = (a.tx(&admin(HOSPITAL), msg.clone()), b.tx(&admin(HOSPITAL), msg));
            prop_assert_eq!(a.chain.ledger().info().map(|c| c.app_hash), b.chain.ledger().info().map(|c| c.app_hash));
            prop_assert_eq!(ra.code, rb.code);
            if total.is_none() {
                prop_assert_eq!(Code::from_value(ra.code), Some(Code::AmountOverflow), "{}", ra.log);
                continue;
            }
            prop_assert_eq!(ra.code, 0, "{}", ra.log);
            let id = ra.attr("claim_id");
            let c = a.claim(&id);
            prop_assert_eq!(check_totals(&c), Ok(()));
            prop_assert_eq!(Some(c.total_claimed), total);
            if status(&c) != ClaimStatus::Pending {
                continue;
            }
            // Amounts picked anywhere in 0..=claimed (or the raw pick, possibly above it).
            let amounts: Vec<u64> = items.iter().zip(picks).map(|(i, p)| {
                let claimed = i.quantity * i.unit_price;
                if p % 5 == 0 { *p } else { p % claimed.saturating_add(1) }
            }).collect();
            let above = items.iter().zip(&amounts).any(|(i, p)| *p > i.quantity * i.unit_price);
            let (da, db) = (a.tx(&admin(INSURER), decide(&id, &amounts)), b.tx(&admin(INSURER), decide(&id, &amounts)));
            prop_assert_eq!(da.code, db.code);
            if above {
                prop_assert_eq!(Code::from_value(da.code), Some(Code::ApprovedExceedsClaimed), "{}", da.log);
                continue;
            }
            prop_assert_eq!(da.code, 0, "{}", da.log);
            let c = a.claim(&id);
            prop_assert_eq!(check_totals(&c), Ok(()));
            prop_assert_eq!(c.decisions.iter().map(|d| d.approved_amount).collect::<Vec<_>>(), amounts);
            prop_assert_eq!(a.chain.ledger().info().map(|c| c.app_hash), b.chain.ledger().info().map(|c| c.app_hash));
        }
    }
}

/// Issue 11, holes 2 and 3: claims need the patient's enrolment and evidence of treatment; free
/// text stays off chain.
mod coverage_and_evidence {
    use super::*;

    fn end(p: usize, index: u64, end: u64) -> Msg {
        Msg::EndCoverage(pb::EndCoverage {
            patient_id: patient(p),
            index,
            end,
        })
    }

    /// The attack as found: the provider picked the insurer's richer policy for a patient
    /// enrolled in another one, or billed an insurer the patient never enrolled with.
    #[test]
    fn a_claim_under_a_policy_the_patient_is_not_enrolled_in_is_refused() {
        let mut w = World::new();
        let mut platinum = gold();
        platinum[2].preauth_required = false;
        w.tx(&admin(INSURER), publish("platinum", platinum)).ok();
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.policy_id = "platinum".into()),
            Code::NoCoverage,
        );
        w.tx(
            &patient_key(0),
            consent("insurer-d", Purpose::Hpaymt, "Claim"),
        )
        .ok();
        w.tx(&admin(OTHER_INSURER), publish("gold", gold())).ok();
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.insurer = "insurer-d".into()),
            Code::NoCoverage,
        );
        assert_eq!(
            w.chain
                .ledger()
                .store()
                .get_u64(&keys::claim_counter())
                .unwrap(),
            0
        );
        // Enrolled: accepted, and the claim names the enrolment it was adjudicated under.
        w.tx(&admin(OTHER_INSURER), enrol(0, "gold", 0, 0)).ok();
        let id = w.submitted(submit_with(|m| m.insurer = "insurer-d".into()));
        assert_eq!(w.claim(&id).coverage_index, 0);
    }

    #[test]
    fn coverage_counts_on_the_day_of_service_and_ends_only_forward() {
        let mut w = World::new();
        w.tx(&admin(INSURER), publish("silver", gold())).ok();
        // Silver from SERVICE_DAY on (coverage 1 of alice).
        let r = w.tx(&admin(INSURER), enrol(0, "silver", SERVICE_DAY, 0));
        assert_eq!(r.ok().attr("index"), "1");
        let silver = |days_before: u64| {
            let mut m = claim_msg(vec![item("80053", 1, 100)]);
            m.policy_id = "silver".into();
            m.service_date -= days_before * DAY;
            Msg::SubmitClaim(m)
        };
        w.refused(&admin(HOSPITAL), silver(1), Code::NoCoverage);
        w.submitted(silver(0));
        // Ending: not before the block time, only shorter, only an existing enrolment.
        let now = T0 + w.height + 1;
        w.refused(&admin(INSURER), end(0, 0, now - 1), Code::InvalidField);
        w.refused(&admin(INSURER), end(0, 7, now + 10), Code::NoCoverage);
        w.refused(&admin(HOSPITAL), end(0, 0, now + 10), Code::NotInsurer);
        let now = T0 + w.height + 1;
        w.tx(&admin(INSURER), end(0, 0, now)).ok();
        w.refused(&admin(INSURER), end(0, 0, now + 5), Code::InvalidField);
        // Services before the end are still covered, services from it on are not.
        w.submitted(submit(vec![item("99213", 1, 100)]));
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.service_date = now + 1),
            Code::NoCoverage,
        );
    }

    #[test]
    fn only_an_insurers_admin_enrols_in_its_own_published_policy_a_bounded_number_of_times() {
        let mut w = World::new();
        w.refused(&admin(HOSPITAL), enrol(0, "gold", 0, 0), Code::NotInsurer);
        w.refused(&ADJUSTER.key(), enrol(0, "gold", 0, 0), Code::NotAuthorized);
        w.refused(&patient_key(0), enrol(0, "gold", 0, 0), Code::NotAuthorized);
        w.refused(
            &admin(INSURER),
            enrol(0, "platinum", 0, 0),
            Code::UnknownPolicy,
        );
        w.refused(
            &admin(OTHER_INSURER),
            enrol(0, "gold", 0, 0),
            Code::UnknownPolicy,
        );
        w.refused(
            &admin(INSURER),
            Msg::EnrolCoverage(pb::EnrolCoverage {
                patient_id: "pt-nobody".into(),
                policy_id: "gold".into(),
                start: 0,
                end: 0,
            }),
            Code::UnknownPatient,
        );
        w.refused(&admin(INSURER), enrol(0, "gold", 10, 5), Code::InvalidField);
        // Alice has 1 enrolment; fill up to the limit, then one more is refused.
        let limit = medledger_tx::limits::MAX_COVERAGES_PER_INSURER;
        let txs: Vec<_> = (1..limit)
            .map(|_| w.sign(&admin(INSURER), enrol(0, "gold", 0, 0)))
            .collect();
        assert!(w.block(&txs).iter().all(|r| r.code == 0));
        w.refused(&admin(INSURER), enrol(0, "gold", 0, 0), Code::TooManyItems);
        assert_eq!(
            w.chain
                .ledger()
                .store()
                .get_u64(&keys::coverage_count(&patient(0), "insurer-c"))
                .unwrap(),
            limit
        );
    }

    /// The attack as found: a provider billed a patient it never treated (it only needed the
    /// patient's HPAYMT consent to the insurer). Carol is enrolled and consents to payment, but
    /// hospital-a never accessed her records.
    #[test]
    fn a_claim_without_evidence_of_treatment_is_refused() {
        let mut w = World::new();
        w.tx(&admin(HOSPITAL), register(&patient_key(2))).ok();
        w.tx(
            &patient_key(2),
            consent("insurer-c", Purpose::Hpaymt, "Claim"),
        )
        .ok();
        w.tx(&admin(INSURER), enrol(2, "gold", 0, 0)).ok();
        let carol = |evidence: Vec<u64>| {
            submit_with(|m| {
                m.patient_id = patient(2);
                m.record_ids.clear();
                m.evidence = evidence;
            })
        };
        w.refused(&admin(HOSPITAL), carol(vec![]), Code::NoTreatmentEvidence);
        w.refused(&admin(HOSPITAL), carol(vec![0]), Code::NoTreatmentEvidence);
        // Alice's access by lab-b is not hospital-a's evidence, nor bob's index a match.
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.evidence = vec![LAB_VISIT]),
            Code::NoTreatmentEvidence,
        );
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.evidence = vec![HOSPITAL_VISIT, LAB_VISIT]),
            Code::NoTreatmentEvidence,
        );
        // An access after the day of service does not show treatment on it.
        let r = w.tx(&admin(HOSPITAL), visit(0));
        let late: u64 = r.ok().attr("index").parse().unwrap();
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| m.evidence = vec![late]),
            Code::NoTreatmentEvidence,
        );
        // An access for operations, not treatment, is no evidence.
        w.tx(
            &patient_key(0),
            consent("hospital-a", Purpose::Hoperat, "*"),
        )
        .ok();
        let ops = w.tx(
            &admin(HOSPITAL),
            Msg::LogAccess(pb::LogAccess {
                purpose: Purpose::Hoperat as i32,
                ..match visit(0) {
                    Msg::LogAccess(l) => l,
                    _ => unreachable!(),
                }
            }),
        );
        let ops: u64 = ops.ok().attr("index").parse().unwrap();
        let today = T0 + w.height + 1;
        w.refused(
            &admin(HOSPITAL),
            submit_with(|m| {
                m.service_date = today;
                m.evidence = vec![ops];
            }),
            Code::NoTreatmentEvidence,
        );
        w.submitted(submit_with(|m| {
            m.service_date = T0 + w.height + 1;
            m.evidence = vec![late];
        }));
        // An access more than 30 days before the day of service is too old.
        let later = T0 + 15 * DAY;
        let tx = w.sign(&admin(HOSPITAL), submit_with(|m| m.service_date = later));
        let r = w.block_at(later, &[tx]).pop().unwrap();
        assert_eq!(
            Code::from_value(r.code),
            Some(Code::NoTreatmentEvidence),
            "{}",
            r.log
        );
    }

    /// Free text on chain is readable by any RPC user and erasable by nobody: appeals and
    /// decisions carry the SHA-256 of the text the member keeps.
    #[test]
    fn appeal_reasons_and_decision_notes_go_on_chain_as_hashes_only() {
        let mut w = World::new();
        let id = w.submitted(pending_claim());
        w.refused(
            &ADJUSTER.key(),
            Msg::DecideClaim(pb::DecideClaim {
                claim_id: id.clone(),
                approved_amounts: vec![0, 0],
                note_hash: b"patient has a history of ...".to_vec(),
            }),
            Code::InvalidField,
        );
        w.tx(&ADJUSTER.key(), decide(&id, &[0, 0])).ok();
        w.refused(
            &admin(HOSPITAL),
            Msg::AppealClaim(pb::AppealClaim {
                claim_id: id.clone(),
                reason_hash: b"the patient's diagnosis is ...".to_vec(),
            }),
            Code::InvalidField,
        );
        w.refused(
            &admin(HOSPITAL),
            Msg::AppealClaim(pb::AppealClaim {
                claim_id: id.clone(),
                reason_hash: Vec::new(),
            }),
            Code::InvalidField,
        );
        w.tx(&admin(HOSPITAL), appeal(&id)).ok();
        let c = w.claim(&id);
        assert_eq!(
            (c.appeal_reason_hash.len(), c.decision_note_hash.len()),
            (32, 32)
        );
    }
}
