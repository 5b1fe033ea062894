//! Governance on a real ledger: members propose and vote, > 2/3 of the voting power decides, and
//! passed changes reach the member registry, the validator registry and CometBFT's validator
//! updates; signatures follow CometBFT's validator set, which lags two heights behind.

#![allow(clippy::unwrap_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use medledger_state::apply::TxOutcome;
use medledger_state::ledger::VoteExtension;
use medledger_state::{BlockResult, Ledger};
use medledger_tx::checkpoint::{decode_certificate_tx, BlsKey};
use medledger_tx::limits::{MAX_OPEN_PROPOSALS, MAX_OPEN_PROPOSALS_PER_MEMBER, MAX_VOTING_PERIOD};
use medledger_tx::pb::submit_proposal::Action;
use medledger_tx::pb::{
    self, tx_body::Msg, AddMember, ChangePower, KeyOwner, MemberKind, Proposal, ProposalStatus,
    RemoveMember, RotateAdminKey, SubmitProposal, UpgradePlan, ValidatorSet, VoteProposal,
};
use medledger_tx::{ids, keys, Code};
use prost::Message;

use crate::common::{self, CHAIN, T0};

/// Validator members, in index order; `regulator-r` is a member without a validator.
const IDS: [&str; 4] = ["hospital-a", "lab-b", "insurer-c", "hospital-d"];
const REGULATOR: usize = 9;
const LAB_E: usize = 4;

fn admin(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[10 + i as u8; 32])
}

fn observer(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[150 + i as u8; 32])
}

fn consensus(i: usize) -> [u8; 32] {
    SigningKey::from_bytes(&[40 + i as u8; 32])
        .verifying_key()
        .to_bytes()
}

fn address(i: usize) -> [u8; 20] {
    ids::validator_address(&consensus(i))
}

fn bls(i: usize) -> BlsKey {
    BlsKey::from_ikm(&[70 + i as u8; 32]).unwrap()
}

/// A ledger of `validators` founding members with a validator of power 10 each, plus
/// `regulator-r` without one; blocks are made one by one with well-behaved sequence numbers.
struct Net {
    chain: common::Chain,
    /// The last committed height.
    height: u64,
}

impl Net {
    fn new(validators: usize) -> Net {
        Net::with_observers(validators, 0)
    }

    /// As [`Net::new`], plus `observers` members without a validator: `observer-{i}`, admin key
    /// [`observer`]`(i)`.
    fn with_observers(validators: usize, observers: usize) -> Net {
        let mut g = common::Genesis::new();
        for (i, id) in IDS.iter().enumerate().take(validators) {
            g = g.validator(id, "hospital", &admin(i), consensus(i), &bls(i));
        }
        g = g.member("regulator-r", "regulator", &admin(REGULATOR));
        for i in 0..observers {
            g = g.member(&format!("observer-{i}"), "research", &observer(i));
        }
        Net {
            chain: g.chain(),
            height: 0,
        }
    }

    fn l(&self) -> &Ledger {
        self.chain.ledger()
    }

    fn l_mut(&mut self) -> &mut Ledger {
        self.chain.ledger_mut()
    }

    fn tx(&mut self, key: &SigningKey, msg: Msg) -> Vec<u8> {
        self.chain.tx(key, msg)
    }

    fn block(&mut self, txs: &[Vec<u8>]) -> BlockResult {
        let r = self.chain.block_at(T0 + self.chain.height, txs);
        self.height = self.chain.height - 1;
        r
    }

    /// One tx in its own block.
    fn run(&mut self, key: &SigningKey, msg: Msg) -> (TxOutcome, BlockResult) {
        let tx = self.tx(key, msg);
        let r = self.block(&[tx]);
        (r.tx_results[0].clone(), r)
    }

    fn ok(&mut self, key: &SigningKey, msg: Msg) -> (TxOutcome, BlockResult) {
        let (o, r) = self.run(key, msg);
        assert_eq!(o.code, 0, "{}", o.log);
        (o, r)
    }

    fn code(&mut self, key: &SigningKey, msg: Msg) -> u32 {
        self.run(key, msg).0.code
    }

    fn proposal(&self, id: u64) -> Proposal {
        Proposal::decode(
            self.l()
                .store()
                .get(&keys::proposal(id))
                .unwrap()
                .unwrap()
                .as_slice(),
        )
        .unwrap()
    }

    fn registry(&self) -> ValidatorSet {
        ValidatorSet::decode(
            self.l()
                .store()
                .get(&keys::validators())
                .unwrap()
                .unwrap()
                .as_slice(),
        )
        .unwrap()
    }

    fn owner(&self, key: &SigningKey) -> Option<KeyOwner> {
        let bytes = self
            .l()
            .store()
            .get(&keys::key_owner(&key.verifying_key().to_bytes()))
            .unwrap()?;
        Some(KeyOwner::decode(bytes.as_slice()).unwrap())
    }

    /// Closes and reopens the ledger, as a restarted node does.
    fn reopen(&mut self) {
        self.chain.reopen();
    }
}

fn propose(action: Action, deadline_height: u64) -> Msg {
    Msg::SubmitProposal(SubmitProposal {
        action: Some(action),
        deadline_height,
    })
}

fn vote(proposal_id: u64, yes: bool) -> Msg {
    Msg::VoteProposal(VoteProposal { proposal_id, yes })
}

fn add_lab_e() -> Action {
    Action::AddMember(AddMember {
        id: "lab-e".into(),
        name: "Lab E".into(),
        kind: MemberKind::Lab as i32,
        admin_key: admin(LAB_E).verifying_key().to_bytes().to_vec(),
        validator_pub_key: consensus(LAB_E).to_vec(),
        power: 10,
        bls_key: bls(LAB_E).public_key().to_vec(),
        bls_pop: bls(LAB_E).proof_of_possession().to_vec(),
    })
}

fn remove(member: &str) -> Action {
    Action::RemoveMember(RemoveMember {
        member_id: member.into(),
    })
}

fn change_power(member: &str, power: u64) -> Action {
    Action::ChangePower(ChangePower {
        member_id: member.into(),
        power,
    })
}

fn kinds(events: &[medledger_state::Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind).collect()
}

fn status(p: &Proposal) -> ProposalStatus {
    ProposalStatus::try_from(p.status).unwrap()
}

/// Proposal 1 by hospital-a, then yes votes by lab-b and insurer-c: passes at the third block.
fn pass_with_three_of_four(n: &mut Net, action: Action) -> BlockResult {
    let deadline = n.height + 20;
    let (o, _) = n.ok(&admin(0), propose(action, deadline));
    let id: u64 = o.events[0].attributes[0].1.parse().unwrap();
    n.ok(&admin(1), vote(id, true));
    assert_eq!(
        status(&n.proposal(id)),
        ProposalStatus::Open,
        "20 of 40 is not enough"
    );
    let (o, r) = n.ok(&admin(2), vote(id, true));
    assert!(
        kinds(&o.events).contains(&"medledger.governance.passed"),
        "{:?}",
        o.events
    );
    assert_eq!(status(&n.proposal(id)), ProposalStatus::Passed);
    r
}

#[test]
fn a_fifth_member_joins_when_more_than_two_thirds_vote_yes_and_cometbft_is_told() {
    let mut n = Net::new(4);
    let r = pass_with_three_of_four(&mut n, add_lab_e());
    let passed_at = n.height;
    assert_eq!(r.validator_updates, vec![(consensus(LAB_E), 10)]);
    assert!(kinds(&r.events).contains(&"medledger.validators.updated"));
    let p = n.proposal(1);
    assert_eq!(
        (p.yes_power, p.no_power, p.total_power, p.decided_height),
        (30, 0, 40, passed_at)
    );
    assert_eq!(p.yes_voters, ["hospital-a", "lab-b", "insurer-c"]);

    let member = pb::Member::decode(
        n.l()
            .store()
            .get(&keys::member("lab-e"))
            .unwrap()
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    assert_eq!(member.kind, MemberKind::Lab as i32);
    assert_eq!(
        n.owner(&admin(LAB_E)).and_then(|o| o.owner),
        Some(pb::key_owner::Owner::MemberId("lab-e".into()))
    );
    let reg = n.registry().validators;
    assert_eq!(reg.len(), 5);
    assert!(
        reg.windows(2).all(|w| w[0].address < w[1].address),
        "registry stays in address order"
    );
    let e = reg.iter().find(|v| v.member_id == "lab-e").unwrap();
    assert_eq!(
        (e.address.as_slice(), e.power, e.bls_key.as_slice()),
        (
            address(LAB_E).as_slice(),
            10,
            bls(LAB_E).public_key().as_slice()
        )
    );
    assert_eq!(
        n.l().validators().len(),
        5,
        "the in-memory registry is reloaded at commit"
    );
    // The change is indexed for auditors.
    assert_eq!(
        n.l().store().get(&keys::validator_change_count()).unwrap(),
        Some(keys::encode_u64(1))
    );
    assert_eq!(
        n.l().store().get(&keys::validator_change(0)).unwrap(),
        Some(keys::encode_u64(passed_at))
    );

    // Decided: later votes do not count; the new member governs from now on.
    assert_eq!(
        n.code(&admin(3), vote(1, true)),
        Code::ProposalClosed.value()
    );
    let (o, _) = n.ok(
        &admin(LAB_E),
        propose(change_power("lab-e", 20), n.height + 5),
    );
    assert_eq!(o.events[0].attributes[1], ("proposer", "lab-e".to_string()));
    assert_eq!(n.proposal(2).total_power, 50);
    assert!(
        n.block(&[]).validator_updates.is_empty(),
        "blocks without changes update nothing"
    );
}

#[test]
fn two_of_four_is_not_enough_and_the_proposal_expires_after_its_deadline() {
    let mut n = Net::new(4);
    n.ok(&admin(0), propose(add_lab_e(), 3));
    let (_, r) = n.ok(&admin(1), vote(1, true));
    assert!(r.validator_updates.is_empty());
    // Block 3 is the deadline: the proposal may still pass in it, and expires at its end.
    let r = n.block(&[]);
    assert_eq!(kinds(&r.events), ["medledger.governance.expired"]);
    let p = n.proposal(1);
    assert_eq!((status(&p), p.decided_height), (ProposalStatus::Expired, 3));
    assert!(p.outcome.contains("deadline 3"), "{}", p.outcome);
    assert_eq!(
        n.code(&admin(2), vote(1, true)),
        Code::ProposalExpired.value()
    );
    // No open proposal left: the empty list is stored as absence (provable, unlike an empty
    // value).
    assert_eq!(n.l().store().get(&keys::open_proposals()).unwrap(), None);
    assert_eq!(n.registry().validators.len(), 4);
}

#[test]
fn a_vote_in_the_deadline_block_still_counts() {
    let mut n = Net::new(4);
    n.ok(&admin(0), propose(add_lab_e(), 2));
    let votes = [
        n.tx(&admin(1), vote(1, true)),
        n.tx(&admin(2), vote(1, true)),
    ];
    let r = n.block(&votes);
    assert_eq!(
        r.tx_results.iter().map(|t| t.code).collect::<Vec<_>>(),
        [0, 0]
    );
    assert_eq!(status(&n.proposal(1)), ProposalStatus::Passed);
    assert!(!kinds(&r.events).contains(&"medledger.governance.expired"));
}

#[test]
fn a_proposal_is_rejected_once_passing_is_impossible() {
    let mut n = Net::new(4);
    n.ok(&admin(0), propose(add_lab_e(), 50));
    n.ok(&admin(1), vote(1, false));
    assert_eq!(
        status(&n.proposal(1)),
        ProposalStatus::Open,
        "30 of 40 could still say yes"
    );
    let (o, _) = n.ok(&admin(2), vote(1, false));
    assert!(kinds(&o.events).contains(&"medledger.governance.rejected"));
    let p = n.proposal(1);
    assert_eq!((status(&p), p.no_power), (ProposalStatus::Rejected, 20));
    assert_eq!(
        n.code(&admin(3), vote(1, true)),
        Code::ProposalClosed.value()
    );
    assert!(n.l().store().get(&keys::member("lab-e")).unwrap().is_none());
}

#[test]
fn only_member_admins_propose_and_vote() {
    let mut n = Net::new(4);
    let stranger = SigningKey::from_bytes(&[99; 32]);
    assert_eq!(
        n.code(&stranger, propose(add_lab_e(), 10)),
        Code::UnknownSigner.value()
    );
    let patient = SigningKey::from_bytes(&[98; 32]);
    n.ok(
        &admin(0),
        Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
            &patient, CHAIN, IDS[0],
        )),
    );
    assert_eq!(
        n.code(&patient, propose(add_lab_e(), 10)),
        Code::NotAuthorized.value()
    );
    n.ok(&admin(0), propose(add_lab_e(), 50));
    assert_eq!(
        n.code(&stranger, vote(1, true)),
        Code::UnknownSigner.value()
    );
    assert_eq!(n.code(&patient, vote(1, true)), Code::NotAuthorized.value());
    // A member without a validator may vote; its vote weighs nothing.
    n.ok(&admin(REGULATOR), vote(1, true));
    let p = n.proposal(1);
    assert_eq!(
        (p.yes_voters.len(), p.yes_power, status(&p)),
        (2, 10, ProposalStatus::Open)
    );
}

#[test]
fn a_member_votes_once_and_only_on_proposals_that_exist() {
    let mut n = Net::new(4);
    n.ok(&admin(0), propose(add_lab_e(), 50));
    assert_eq!(
        n.code(&admin(0), vote(1, true)),
        Code::AlreadyVoted.value(),
        "the submission was its yes"
    );
    n.ok(&admin(1), vote(1, false));
    assert_eq!(n.code(&admin(1), vote(1, true)), Code::AlreadyVoted.value());
    assert_eq!(
        n.code(&admin(1), vote(7, true)),
        Code::UnknownProposal.value()
    );
    assert_eq!(n.code(&admin(1), vote(0, true)), Code::InvalidField.value());
}

#[test]
fn deadlines_must_be_now_or_later_and_within_the_voting_period() {
    let mut n = Net::new(4);
    n.block(&[]);
    n.block(&[]);
    assert_eq!(
        n.code(&admin(0), propose(add_lab_e(), 2)),
        Code::BadDeadline.value()
    );
    assert_eq!(
        n.code(&admin(0), propose(add_lab_e(), 4 + MAX_VOTING_PERIOD + 1)),
        Code::VotingPeriodTooLong.value()
    );
    n.ok(&admin(0), propose(add_lab_e(), 5 + MAX_VOTING_PERIOD));
}

/// Issue 11, item 12 (governance jamming): a deadline 100,000 blocks ahead held a slot for
/// weeks. Deadlines are at most MAX_VOTING_PERIOD (about a day of blocks) ahead.
#[test]
fn a_deadline_beyond_the_voting_period_is_refused_with_voting_period_too_long() {
    let mut n = Net::new(4);
    assert_eq!(MAX_VOTING_PERIOD, 86_400);
    assert_eq!(
        n.code(&admin(0), propose(add_lab_e(), 100_000)),
        Code::VotingPeriodTooLong.value()
    );
    // The block that applies the next tx is height 2: its latest deadline is 2 + the period.
    assert_eq!(
        n.code(&admin(0), propose(add_lab_e(), 2 + MAX_VOTING_PERIOD + 1)),
        Code::VotingPeriodTooLong.value()
    );
    n.ok(&admin(0), propose(add_lab_e(), 3 + MAX_VOTING_PERIOD));
    assert!(n.l().store().get(&keys::proposal(2)).unwrap().is_none());
}

/// Issue 11, item 12: one admin key (here the zero-power regulator) filled every open-proposal
/// slot. Now it holds at most MAX_OPEN_PROPOSALS_PER_MEMBER; others still propose; a slot frees
/// when the proposal expires.
#[test]
fn one_member_cannot_jam_governance_member_proposal_limit() {
    let mut n = Net::new(4);
    assert_eq!(MAX_OPEN_PROPOSALS_PER_MEMBER, 2);
    let jam: Vec<Vec<u8>> = (0..MAX_OPEN_PROPOSALS as u64)
        .map(|p| n.tx(&admin(REGULATOR), propose(change_power("lab-b", p + 1), 4)))
        .collect();
    let r = n.block(&jam);
    let codes: Vec<u32> = r.tx_results.iter().map(|t| t.code).collect();
    assert_eq!(codes[..2], [0, 0], "a member without power may propose");
    assert!(
        codes[2..]
            .iter()
            .all(|&c| c == Code::MemberProposalLimit.value()),
        "{codes:?}"
    );
    // Other members are not blocked.
    n.ok(&admin(0), propose(add_lab_e(), 50));
    // Block 3: still open; block 4 is the deadline, they expire at its end.
    assert_eq!(
        n.code(&admin(REGULATOR), propose(change_power("lab-b", 7), 10)),
        Code::MemberProposalLimit.value()
    );
    let r = n.block(&[]);
    assert_eq!(
        kinds(&r.events),
        [
            "medledger.governance.expired",
            "medledger.governance.expired"
        ]
    );
    n.ok(&admin(REGULATOR), propose(change_power("lab-b", 7), 10));
    // A decided proposal frees its slot too.
    n.ok(&admin(REGULATOR), propose(change_power("lab-b", 8), 10));
    assert_eq!(
        n.code(&admin(REGULATOR), propose(change_power("lab-b", 9), 10)),
        Code::MemberProposalLimit.value()
    );
    n.ok(&admin(0), vote(4, false));
    n.ok(&admin(1), vote(4, false)); // 20 of 40 no: rejected
    assert_eq!(status(&n.proposal(4)), ProposalStatus::Rejected);
    n.ok(&admin(REGULATOR), propose(change_power("lab-b", 9), 10));
}

#[test]
fn open_proposals_are_bounded() {
    // 16 members with 2 open proposals each fill the 32 slots; the 17th is refused.
    let members = MAX_OPEN_PROPOSALS / MAX_OPEN_PROPOSALS_PER_MEMBER;
    let observers = members - 5 + 1;
    let mut n = Net::with_observers(4, observers);
    let mut signers: Vec<SigningKey> = (0..4).map(admin).collect();
    signers.push(admin(REGULATOR));
    signers.extend((0..observers).map(observer));
    let mut txs = Vec::new();
    for (i, key) in signers.iter().enumerate() {
        for p in 0..MAX_OPEN_PROPOSALS_PER_MEMBER as u64 {
            if i < members || p == 0 {
                txs.push(n.tx(key, propose(change_power("lab-b", 1 + p), 100)));
            }
        }
    }
    let r = n.block(&txs);
    assert!(r.tx_results[..MAX_OPEN_PROPOSALS]
        .iter()
        .all(|t| t.code == 0));
    assert_eq!(
        r.tx_results[MAX_OPEN_PROPOSALS].code,
        Code::TooManyProposals.value()
    );
}

#[test]
fn add_member_refuses_taken_ids_admin_keys_and_validator_keys() {
    let mut n = Net::new(4);
    let Action::AddMember(lab_e) = add_lab_e() else {
        unreachable!()
    };
    let cases = [
        (
            AddMember {
                id: "lab-b".into(),
                ..lab_e.clone()
            },
            Code::MemberExists,
        ),
        (
            AddMember {
                admin_key: admin(1).verifying_key().to_bytes().to_vec(),
                ..lab_e.clone()
            },
            Code::KeyInUse,
        ),
        (
            AddMember {
                validator_pub_key: consensus(1).to_vec(),
                ..lab_e.clone()
            },
            Code::ValidatorExists,
        ),
        (
            AddMember {
                bls_key: bls(1).public_key().to_vec(),
                bls_pop: bls(1).proof_of_possession().to_vec(),
                ..lab_e.clone()
            },
            Code::ValidatorExists,
        ),
    ];
    for (add, want) in cases {
        assert_eq!(
            n.code(&admin(0), propose(Action::AddMember(add.clone()), 50)),
            want.value(),
            "{add:?}"
        );
    }
    // A member without a validator changes no power.
    assert_eq!(
        n.code(&admin(0), propose(change_power("regulator-r", 5), 50)),
        Code::NoValidator.value()
    );
    assert_eq!(
        n.code(&admin(0), propose(remove("nobody"), 50)),
        Code::UnknownMember.value()
    );
    // A proof of possession of another key is refused by the stateless checks (last: such a tx
    // consumes no sequence number, so this helper's count is off afterwards).
    let bad_pop = AddMember {
        bls_pop: bls(1).proof_of_possession().to_vec(),
        ..lab_e
    };
    assert_eq!(
        n.code(&admin(1), propose(Action::AddMember(bad_pop), 50)),
        Code::InvalidField.value()
    );
}

#[test]
fn change_power_reaches_cometbft_and_later_tallies() {
    let mut n = Net::new(4);
    let r = pass_with_three_of_four(&mut n, change_power("lab-b", 40));
    assert_eq!(r.validator_updates, vec![(consensus(1), 40)]);
    let b = n
        .registry()
        .validators
        .into_iter()
        .find(|v| v.member_id == "lab-b")
        .unwrap();
    assert_eq!(b.power, 40);
    // lab-b alone now holds 40 of 70: a lot, not more than 2/3.
    n.ok(&admin(1), propose(add_lab_e(), n.height + 5));
    let p = n.proposal(2);
    assert_eq!(
        (p.yes_power, p.total_power, status(&p)),
        (40, 70, ProposalStatus::Open)
    );
    // With hospital-a (10) it has 50 of 70 > 2/3.
    n.ok(&admin(0), vote(2, true));
    assert_eq!(status(&n.proposal(2)), ProposalStatus::Passed);
}

#[test]
fn rotating_the_admin_key_makes_the_old_key_sign_nothing() {
    let mut n = Net::new(4);
    let new_key = SigningKey::from_bytes(&[77; 32]);
    let rotate = Action::RotateAdminKey(RotateAdminKey {
        member_id: "hospital-d".into(),
        new_admin_key: new_key.verifying_key().to_bytes().to_vec(),
    });
    let r = pass_with_three_of_four(&mut n, rotate);
    assert!(
        r.validator_updates.is_empty(),
        "an admin key is not a validator key"
    );
    let old = admin(3);
    assert_eq!(
        n.code(&old, propose(add_lab_e(), n.height + 5)),
        Code::UnknownSigner.value()
    );
    assert_eq!(
        n.code(
            &admin(0),
            Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(&old, CHAIN, IDS[0]))
        ),
        Code::KeyRetired.value(),
        "nor become a patient"
    );
    let (o, _) = n.ok(&new_key, propose(add_lab_e(), n.height + 5));
    assert_eq!(
        o.events[0].attributes[1],
        ("proposer", "hospital-d".to_string())
    );
    // A retired key cannot be given to anyone again.
    let reuse = Action::RotateAdminKey(RotateAdminKey {
        member_id: "lab-b".into(),
        new_admin_key: old.verifying_key().to_bytes().to_vec(),
    });
    assert_eq!(
        n.code(&admin(1), propose(reuse, n.height + 5)),
        Code::KeyInUse.value()
    );
}

#[test]
fn removing_a_member_drops_its_validator_and_retires_its_key() {
    let mut n = Net::new(4);
    let r = pass_with_three_of_four(&mut n, remove("hospital-d"));
    assert_eq!(r.validator_updates, vec![(consensus(3), 0)]);
    assert!(n
        .l()
        .store()
        .get(&keys::member("hospital-d"))
        .unwrap()
        .is_none());
    assert_eq!(n.registry().validators.len(), 3);
    assert_eq!(
        n.code(&admin(3), vote(1, true)),
        Code::UnknownSigner.value()
    );
    assert_eq!(
        n.owner(&admin(3)).and_then(|o| o.owner),
        Some(pb::key_owner::Owner::RetiredMemberKey("hospital-d".into()))
    );
}

fn add_member(id: &str, admin_key: &SigningKey) -> Action {
    Action::AddMember(AddMember {
        id: id.into(),
        name: "Newcomer".into(),
        kind: MemberKind::Hospital as i32,
        admin_key: admin_key.verifying_key().to_bytes().to_vec(),
        ..Default::default()
    })
}

/// Issue 11, item 5: a removed member's id was re-added by a later proposal, and the newcomer
/// inherited everything keyed by the id. Now removal writes a tombstone and the id is refused.
#[test]
fn a_removed_members_id_cannot_be_added_again_member_id_retired() {
    let mut n = Net::new(4);
    pass_with_three_of_four(&mut n, remove("hospital-d"));
    let removed_at = n.height;
    assert_eq!(
        n.l()
            .store()
            .get(&keys::member_tombstone("hospital-d"))
            .unwrap(),
        Some(keys::encode_u64(removed_at))
    );
    let newcomer = SigningKey::from_bytes(&[121; 32]);
    assert_eq!(
        n.code(
            &admin(0),
            propose(add_member("hospital-d", &newcomer), n.height + 5)
        ),
        Code::MemberIdRetired.value()
    );
    // Another id is fine.
    n.ok(
        &admin(0),
        propose(add_member("hospital-f", &newcomer), n.height + 5),
    );
}

/// The same attack when the AddMember was submitted before the removal: it passes afterwards
/// and is FAILED at execution, adding nothing.
#[test]
fn an_add_member_passing_after_the_ids_removal_fails_with_member_id_retired() {
    let mut n = Net::new(4);
    let deadline = n.height + 50;
    n.ok(&admin(0), propose(add_lab_e(), deadline)); // 1
    let later = SigningKey::from_bytes(&[122; 32]);
    n.ok(&admin(1), propose(add_member("lab-e", &later), deadline)); // 2
    n.ok(&admin(1), vote(1, true));
    n.ok(&admin(2), vote(1, true)); // lab-e joins: 30 of 40
    assert_eq!(status(&n.proposal(1)), ProposalStatus::Passed);
    n.ok(&admin(2), propose(remove("lab-e"), deadline)); // 3
    n.ok(&admin(0), vote(3, true));
    n.ok(&admin(1), vote(3, true));
    n.ok(&admin(3), vote(3, true)); // 40 of 50
    assert_eq!(status(&n.proposal(3)), ProposalStatus::Passed);
    n.ok(&admin(0), vote(2, true));
    let (o, _) = n.ok(&admin(2), vote(2, true)); // 30 of 40
    assert!(kinds(&o.events).contains(&"medledger.governance.failed"));
    let p = n.proposal(2);
    assert_eq!(status(&p), ProposalStatus::Failed);
    assert!(p.outcome.contains("MEMBER_ID_RETIRED"), "{}", p.outcome);
    assert!(n.l().store().get(&keys::member("lab-e")).unwrap().is_none());
    assert_eq!(n.owner(&later), None, "the newcomer's key owns nothing");
}

/// A removed member's practitioners stop acting at once (`require_active` needs the member to
/// exist) and, the id never coming back, for good.
#[test]
fn a_removed_members_practitioners_can_no_longer_act() {
    let mut n = Net::new(4);
    let doctor = SigningKey::from_bytes(&[123; 32]);
    n.ok(
        &admin(3),
        Msg::RegisterPractitioner(pb::RegisterPractitioner {
            public_key: doctor.verifying_key().to_bytes().to_vec(),
            role: pb::PractitionerRole::Physician as i32,
            licence_hash: vec![7; 32],
            key_proof: medledger_tx::keyproof::prove(
                &doctor,
                CHAIN,
                medledger_tx::keyproof::REGISTER_PRACTITIONER,
                IDS[3],
            )
            .to_vec(),
            ..Default::default()
        }),
    );
    let patient = SigningKey::from_bytes(&[124; 32]);
    n.ok(
        &admin(0),
        Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
            &patient, CHAIN, IDS[0],
        )),
    );
    let patient_id = ids::patient_id(&patient.verifying_key().to_bytes());
    let anchor = |record: &str| {
        Msg::AnchorRecord(pb::AnchorRecord {
            record_id: record.into(),
            patient_id: patient_id.clone(),
            resource_type: "Observation".into(),
            content_hash: vec![9; 32],
            size: 10,
            key_id: "k1".into(),
            holders: vec![],
            threshold: 0,
            share_commitments: vec![],
        })
    };
    n.ok(&doctor, anchor("r-1"));
    pass_with_three_of_four(&mut n, remove("hospital-d"));
    assert_eq!(
        n.code(&doctor, anchor("r-2")),
        Code::PractitionerInactive.value()
    );
}

#[test]
fn the_last_validator_cannot_be_removed() {
    let mut n = Net::new(1);
    assert_eq!(
        n.code(&admin(0), propose(remove("hospital-a"), 10)),
        Code::ValidatorSetEmpty.value()
    );
    // The regulator runs no validator: removing it leaves the set as it is.
    let (o, r) = n.ok(&admin(0), propose(remove("regulator-r"), 10));
    assert!(
        kinds(&o.events).contains(&"medledger.governance.passed"),
        "10 of 10 passes at once"
    );
    assert!(r.validator_updates.is_empty());
}

#[test]
fn a_passed_proposal_whose_preconditions_vanished_fails_and_changes_nothing() {
    let mut n = Net::new(4);
    n.ok(&admin(0), propose(change_power("hospital-d", 20), 50));
    pass_with_three_of_four(&mut n, remove("hospital-d")); // proposal 2
    n.ok(&admin(1), vote(1, true));
    let (o, r) = n.ok(&admin(2), vote(1, true));
    assert!(
        kinds(&o.events).contains(&"medledger.governance.failed"),
        "{:?}",
        o.events
    );
    let p = n.proposal(1);
    assert_eq!(status(&p), ProposalStatus::Failed);
    assert!(p.outcome.contains("UNKNOWN_MEMBER"), "{}", p.outcome);
    assert!(r.validator_updates.is_empty());
}

#[test]
fn a_removed_members_votes_are_dropped_from_open_proposals() {
    let mut n = Net::new(4);
    n.ok(&admin(3), propose(change_power("lab-b", 20), 50)); // proposal 1, hospital-d's yes
    pass_with_three_of_four(&mut n, remove("hospital-d"));
    assert!(n.proposal(1).yes_voters.is_empty());
}

/// The validator set voting at height h is the registry of state h-2: lab-e, added by block H,
/// signs checkpoints from the votes of height H+2 on; before that its shares are refused.
#[test]
fn signatures_follow_cometbfts_validator_set_two_heights_late() {
    let mut n = Net::new(4);
    pass_with_three_of_four(&mut n, add_lab_e());
    let h = n.height;
    let root = n.l().store().root_at(h).unwrap();
    let share = bls(LAB_E).sign_checkpoint(CHAIN, h, &root);
    assert!(
        !n.l().verify_vote_extension(&address(LAB_E), h + 1, &share),
        "not in CometBFT's set at h+1"
    );
    assert!(n.l().verify_vote_extension(
        &address(0),
        h + 1,
        &bls(0).sign_checkpoint(CHAIN, h, &root)
    ));
    assert_eq!(n.l().signers_of(h).unwrap().len(), 4);
    assert_eq!(n.l().signers_of(h + 1).unwrap().len(), 5);

    n.block(&[]);
    n.reopen(); // a restarted node computes the same sets from its store
    let root = n.l().store().root_at(h + 1).unwrap();
    let share = bls(LAB_E).sign_checkpoint(CHAIN, h + 1, &root);
    assert!(
        n.l().verify_vote_extension(&address(LAB_E), h + 2, &share),
        "in the set from h+2"
    );
    n.block(&[]);

    // The proposer of block h+3 certifies state h+1 with the 5-validator set.
    let votes: Vec<VoteExtension> = [0, 1, 2, LAB_E]
        .iter()
        .map(|&i| VoteExtension {
            address: address(i),
            committed: true,
            extension: bls(i).sign_checkpoint(CHAIN, h + 1, &root).to_vec(),
        })
        .collect();
    let txs = n.l_mut().prepare_proposal(h + 3, &votes, vec![], 1 << 20);
    let cert = decode_certificate_tx(&txs[0]).unwrap().unwrap();
    assert_eq!(cert.signers.len(), 1);
    assert_eq!(cert.signers[0].count_ones(), 4);
    // 3 of 5 (30 of 50) is not more than 2/3.
    assert!(n.l().build_certificate(h + 3, &votes[..3]).is_none());
    assert!(n.l_mut().process_proposal(h + 3, &txs).is_ok());
    let r = n.block(&txs);
    assert_eq!(r.tx_results[0].code, 0, "{}", r.tx_results[0].log);
}

#[test]
fn a_removed_validator_still_signs_until_cometbft_drops_it() {
    let mut n = Net::new(4);
    pass_with_three_of_four(&mut n, remove("hospital-d"));
    let h = n.height;
    let root = n.l().store().root_at(h).unwrap();
    assert!(
        n.l()
            .verify_vote_extension(&address(3), h + 1, &bls(3).sign_checkpoint(CHAIN, h, &root)),
        "still votes at h+1"
    );
    n.block(&[]);
    let root = n.l().store().root_at(h + 1).unwrap();
    assert!(!n.l().verify_vote_extension(
        &address(3),
        h + 2,
        &bls(3).sign_checkpoint(CHAIN, h + 1, &root)
    ));
}

#[test]
fn the_same_governance_blocks_give_the_same_app_hashes() {
    let run = || {
        let mut n = Net::new(4);
        pass_with_three_of_four(&mut n, add_lab_e());
        n.ok(&admin(LAB_E), propose(remove("hospital-d"), 9));
        let r = n.block(&[]);
        (r.app_hash, n.registry())
    };
    assert_eq!(run(), run());
}

/// An auditor trusting certificates follows the change: the certificate of the changing state is
/// signed by the old set and certifies the new registry, which checks later certificates.
#[test]
fn certificate_trust_is_handed_over_to_the_new_set() {
    use medledger_query::certificate::CertTrust;
    use medledger_query::history::ProvenRead;

    let mut n = Net::new(4);
    let genesis_set = ValidatorSet::decode(
        n.l()
            .store()
            .get_at(&keys::validators(), 0)
            .unwrap()
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    let genesis = CertTrust::from_registry(CHAIN, &genesis_set);
    pass_with_three_of_four(&mut n, add_lab_e());
    let h = n.height;
    n.block(&[]);
    n.block(&[]);
    let shares = |n: &Net, state: u64, who: &[usize]| -> Vec<VoteExtension> {
        let root = n.l().store().root_at(state).unwrap();
        who.iter()
            .map(|&i| VoteExtension {
                address: address(i),
                committed: true,
                extension: bls(i).sign_checkpoint(CHAIN, state, &root).to_vec(),
            })
            .collect()
    };
    let cert_h = n
        .l()
        .build_certificate(h + 2, &shares(&n, h, &[0, 1, 2, 3]))
        .unwrap();
    let cert_next = n
        .l()
        .build_certificate(h + 3, &shares(&n, h + 1, &[1, 2, 3, LAB_E]))
        .unwrap();
    assert!(
        genesis.verify(&cert_h).is_ok(),
        "state h is still certified by the founders"
    );
    assert!(
        genesis.verify(&cert_next).is_err(),
        "state h+1 is certified by the new set"
    );

    let answer = n.l().query("/validators", &[], h, true);
    let read = ProvenRead {
        key: answer.key,
        value: answer.value,
        proof: answer.proof.unwrap(),
    };
    let next = genesis.handover(&cert_h, &read).unwrap();
    let (state, signers) = next.verify(&cert_next).unwrap();
    assert_eq!(
        (state.height, state.signed_power, state.total_power),
        (h + 1, 40, 50)
    );
    assert!(signers.contains(&"lab-e".to_string()), "{signers:?}");

    // A registry read at another height does not match the certified root.
    let stale = n.l().query("/validators", &[], h - 1, true);
    let stale = ProvenRead {
        key: stale.key,
        value: stale.value,
        proof: stale.proof.unwrap(),
    };
    assert!(genesis.handover(&cert_h, &stale).is_err());
}

fn upgrade(height: u64, app_version: u64) -> Action {
    Action::ScheduleUpgrade(pb::ScheduleUpgrade {
        name: "v2".into(),
        height,
        app_version,
    })
}

#[test]
fn a_passed_upgrade_migrates_at_its_height_once() {
    let mut n = Net::new(4);
    let version = |n: &Net| {
        medledger_state::view::StateRead::get_u64(n.l().store(), &keys::app_version()).unwrap()
    };
    let at = n.height + 10;
    pass_with_three_of_four(&mut n, upgrade(at, 2));
    let plan: UpgradePlan = UpgradePlan::decode(
        n.l()
            .store()
            .get(&keys::upgrade_plan())
            .unwrap()
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    assert_eq!((plan.height, plan.app_version), (at, 2));
    // Nothing changes before the height; the block at it migrates, first thing.
    while n.height + 1 < at {
        let r = n.block(&[]);
        assert_eq!(version(&n), 0, "version 1 (absent) before {at}");
        assert_eq!(r.app_version, None);
    }
    let r = n.block(&[]);
    assert_eq!(n.height, at);
    assert_eq!(
        r.app_version,
        Some(2),
        "the server hands CometBFT the new version"
    );
    assert!(
        kinds(&r.events).contains(&"medledger.upgrade.applied"),
        "{:?}",
        r.events
    );
    assert_eq!(version(&n), 2);
    assert_eq!(n.l().store().get(&keys::upgrade_plan()).unwrap(), None);
    assert_eq!(n.l().app_version(), 2);
    // Applied once: later blocks do nothing more, and the same version cannot be scheduled again.
    let r = n.block(&[]);
    assert!(!kinds(&r.events).contains(&"medledger.upgrade.applied"));
    assert_eq!(r.app_version, None);
    assert_eq!(
        n.code(&admin(0), propose(upgrade(n.height + 10, 2), n.height + 20)),
        Code::InvalidField.value(),
        "the chain already runs 2"
    );
}

#[test]
fn an_upgrade_must_go_one_version_up_to_a_later_height_and_only_one_is_pending() {
    let mut n = Net::new(4);
    // Skipping a version is refused at submission.
    assert_eq!(
        n.code(&admin(0), propose(upgrade(n.height + 10, 3), n.height + 20)),
        Code::InvalidField.value()
    );
    // A height that has passed by the time the proposal passes: it passes but cannot execute.
    let deadline = n.height + 20;
    let soon = n.height + 2;
    let (o, _) = n.ok(&admin(0), propose(upgrade(soon, 2), deadline));
    let id: u64 = o.events[0].attributes[0].1.parse().unwrap();
    n.ok(&admin(1), vote(id, true));
    n.ok(&admin(2), vote(id, true));
    assert_eq!(status(&n.proposal(id)), ProposalStatus::Failed);
    assert!(
        n.proposal(id).outcome.contains("not after this block"),
        "{}",
        n.proposal(id).outcome
    );
    assert_eq!(n.l().store().get(&keys::upgrade_plan()).unwrap(), None);
    // One pending plan at a time.
    let later = n.height + 30;
    pass_with_three_of_four(&mut n, upgrade(later, 2));
    assert_eq!(
        n.code(&admin(0), propose(upgrade(n.height + 40, 2), n.height + 20)),
        Code::InvalidField.value(),
        "already scheduled"
    );
}

// Auditor grants (docs/rules.md, "Governance"; docs/privacy.md, "Who sees what").

/// Member `member` (an index into IDS) registers a privacy officer with key seed `seed`.
fn register_officer(n: &mut Net, member: usize, seed: u8) -> (SigningKey, String) {
    let officer = SigningKey::from_bytes(&[seed; 32]);
    n.ok(
        &admin(member),
        Msg::RegisterPractitioner(pb::RegisterPractitioner {
            public_key: officer.verifying_key().to_bytes().to_vec(),
            role: pb::PractitionerRole::PrivacyOfficer as i32,
            licence_hash: vec![7; 32],
            key_proof: medledger_tx::keyproof::prove(
                &officer,
                CHAIN,
                medledger_tx::keyproof::REGISTER_PRACTITIONER,
                IDS[member],
            )
            .to_vec(),
            ..Default::default()
        }),
    );
    let did = ids::practitioner_did(&officer.verifying_key().to_bytes());
    (officer, did)
}

fn grant_auditor(did: &str, scope_member: &str) -> Action {
    Action::GrantAuditor(pb::GrantAuditor {
        practitioner_did: did.into(),
        scope_member: scope_member.into(),
    })
}

fn revoke_auditor(did: &str) -> Action {
    Action::RevokeAuditor(pb::RevokeAuditor {
        practitioner_did: did.into(),
    })
}

fn auditor(n: &Net, did: &str) -> Option<pb::Auditor> {
    n.l()
        .store()
        .get(&keys::auditor(did))
        .unwrap()
        .map(|v| pb::Auditor::decode(v.as_slice()).unwrap())
}

#[test]
fn a_passed_grant_auditor_writes_the_grant_and_a_passed_revoke_auditor_deletes_it() {
    let mut n = Net::new(4);
    let (_, did) = register_officer(&mut n, 3, 130);
    let r = pass_with_three_of_four(&mut n, grant_auditor(&did, ""));
    let granted_at = n.height;
    let event = r.tx_results[0]
        .events
        .iter()
        .find(|e| e.kind == "medledger.governance.auditor_granted")
        .expect("granted event");
    assert_eq!(
        event.attributes,
        vec![("did", did.clone()), ("scope_member", String::new())]
    );
    assert_eq!(
        auditor(&n, &did),
        Some(pb::Auditor {
            practitioner_did: did.clone(),
            scope_member: String::new(),
            granted_by_proposal: 1,
            granted_height: granted_at,
        }),
        "every member"
    );
    // A second grant replaces the first: the scope narrows to lab-b.
    pass_with_three_of_four(&mut n, grant_auditor(&did, "lab-b"));
    let g = auditor(&n, &did).unwrap();
    assert_eq!(
        (g.scope_member.as_str(), g.granted_by_proposal),
        ("lab-b", 2)
    );
    let r = pass_with_three_of_four(&mut n, revoke_auditor(&did));
    assert!(kinds(&r.tx_results[0].events).contains(&"medledger.governance.auditor_revoked"));
    assert_eq!(auditor(&n, &did), None);
    // Nothing is left to revoke: refused at submission with INVALID_FIELD.
    assert_eq!(
        n.code(&admin(0), propose(revoke_auditor(&did), n.height + 20)),
        Code::InvalidField.value()
    );
}

#[test]
fn a_grant_for_a_practitioner_not_registered_when_it_passes_fails_with_unknown_practitioner() {
    let mut n = Net::new(4);
    let officer = SigningKey::from_bytes(&[131; 32]);
    let did = ids::practitioner_did(&officer.verifying_key().to_bytes());
    // Proposed before the practitioner exists: accepted (the member may be registering them).
    let deadline = n.height + 20;
    n.ok(&admin(0), propose(grant_auditor(&did, ""), deadline));
    n.ok(&admin(1), vote(1, true));
    let (o, _) = n.ok(&admin(2), vote(1, true));
    assert!(
        kinds(&o.events).contains(&"medledger.governance.failed"),
        "{:?}",
        o.events
    );
    let p = n.proposal(1);
    assert_eq!(status(&p), ProposalStatus::Failed);
    assert!(p.outcome.contains("UNKNOWN_PRACTITIONER"), "{}", p.outcome);
    assert_eq!(auditor(&n, &did), None);
    // Registered before the deciding vote: the same grant passes.
    n.ok(&admin(0), propose(grant_auditor(&did, ""), n.height + 20)); // proposal 2
    let (_, registered) = register_officer(&mut n, 3, 131);
    assert_eq!(registered, did);
    n.ok(&admin(1), vote(2, true));
    n.ok(&admin(2), vote(2, true));
    assert_eq!(status(&n.proposal(2)), ProposalStatus::Passed);
    assert!(auditor(&n, &did).is_some());
}

#[test]
fn a_grant_scoped_to_a_non_member_is_refused_and_one_whose_member_left_fails() {
    let mut n = Net::new(4);
    let (_, did) = register_officer(&mut n, 0, 132);
    assert_eq!(
        n.code(
            &admin(0),
            propose(grant_auditor(&did, "lab-x"), n.height + 20)
        ),
        Code::UnknownMember.value(),
        "refused at submission"
    );
    // hospital-d is a member at submission, gone when the grant passes: FAILED.
    n.ok(
        &admin(0),
        propose(grant_auditor(&did, "hospital-d"), n.height + 50),
    ); // 1
    pass_with_three_of_four(&mut n, remove("hospital-d")); // 2
    n.ok(&admin(1), vote(1, true));
    n.ok(&admin(2), vote(1, true));
    let p = n.proposal(1);
    assert_eq!(status(&p), ProposalStatus::Failed);
    assert!(p.outcome.contains("UNKNOWN_MEMBER"), "{}", p.outcome);
    assert_eq!(auditor(&n, &did), None);
}

#[test]
fn only_member_admins_propose_auditor_grants_not_the_officer_nor_a_patient_nor_a_stranger() {
    let mut n = Net::new(4);
    let (officer, did) = register_officer(&mut n, 0, 133);
    let stranger = SigningKey::from_bytes(&[99; 32]);
    assert_eq!(
        n.code(&stranger, propose(grant_auditor(&did, ""), n.height + 20)),
        Code::UnknownSigner.value()
    );
    assert_eq!(
        n.code(&officer, propose(grant_auditor(&did, ""), n.height + 20)),
        Code::NotAuthorized.value(),
        "a privacy officer cannot grant themselves the role"
    );
    let patient = SigningKey::from_bytes(&[98; 32]);
    n.ok(
        &admin(0),
        Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
            &patient, CHAIN, IDS[0],
        )),
    );
    assert_eq!(
        n.code(&patient, propose(grant_auditor(&did, ""), n.height + 20)),
        Code::NotAuthorized.value()
    );
    // One member alone does not make an auditor: hospital-a's proposal stays open.
    n.ok(&admin(0), propose(grant_auditor(&did, ""), n.height + 20));
    assert_eq!(status(&n.proposal(1)), ProposalStatus::Open);
    assert_eq!(auditor(&n, &did), None);
    // Stateless: an empty DID is refused before any state is read (the last tx here: a
    // stateless refusal does not consume the sequence number this helper counted).
    assert_eq!(
        n.code(&admin(0), propose(grant_auditor("", ""), n.height + 20)),
        Code::InvalidField.value(),
        "an empty DID"
    );
}
