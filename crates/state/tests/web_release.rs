//! The approved release of the pages (issue 27, "Code trust"): `params/web-release` from genesis
//! and from a passed SetWebRelease proposal. Only a member's admin proposes it; a hash that is
//! not 32 bytes, a bad label and the release already approved are refused with their codes;
//! passing it writes the hash, the label, the height and the proposal.

#![allow(clippy::unwrap_used, clippy::panic)]

use medledger_state::genesis::genesis_writes;
use medledger_state::view::StateRead;
use medledger_state::Ledger;
use medledger_tx::pb::submit_proposal::Action;
use medledger_tx::pb::{self, tx_body::Msg, Proposal, ProposalStatus, SetWebRelease, WebRelease};
use medledger_tx::{keys, Code};

use crate::common::*;

const HOSP: usize = 0;
const LAB: usize = 1;
const INSURER: usize = 2;

fn release(hash: &[u8], version: &str) -> Msg {
    Msg::SubmitProposal(pb::SubmitProposal {
        action: Some(Action::SetWebRelease(SetWebRelease {
            bundle_sha256: hash.to_vec(),
            version: version.into(),
        })),
        deadline_height: 50,
    })
}

fn vote(id: u64) -> Msg {
    Msg::VoteProposal(pb::VoteProposal {
        proposal_id: id,
        yes: true,
    })
}

fn last_proposal(c: &Chain) -> u64 {
    c.ledger()
        .store()
        .get_u64(&keys::proposal_counter())
        .unwrap()
}

/// hospital-a proposes `hash`; lab-b and insurer-c vote yes (30 of 40 power). Returns the
/// proposal's id.
fn pass(c: &mut Chain, hash: &[u8], version: &str) -> u64 {
    c.ok(&admin(HOSP), release(hash, version));
    let id = last_proposal(c);
    c.ok(&admin(LAB), vote(id));
    c.ok(&admin(INSURER), vote(id));
    id
}

fn approved(c: &Chain) -> Option<WebRelease> {
    c.get(&keys::web_release())
}

#[test]
fn a_passed_proposal_approves_the_release_with_its_height_and_proposal() {
    let mut c = Chain::with_validators(&[]);
    assert_eq!(
        approved(&c),
        None,
        "none approved without genesis web_release"
    );
    c.ok(&admin(HOSP), release(&[7; 32], "2025.06-1"));
    let id = last_proposal(&c);
    assert_eq!(approved(&c), None, "an open proposal changes nothing");
    c.ok(&admin(LAB), vote(id));
    let events = c.ok(&admin(INSURER), vote(id));
    assert!(
        events
            .iter()
            .any(|e| e.kind == "medledger.governance.web_release_set"),
        "{events:?}"
    );
    let p: Proposal = c.get(&keys::proposal(id)).unwrap();
    assert_eq!(p.status, ProposalStatus::Passed as i32, "{}", p.outcome);
    assert_eq!(
        approved(&c),
        Some(WebRelease {
            bundle_sha256: vec![7; 32],
            version: "2025.06-1".into(),
            height: c.height - 1,
            proposal_id: id,
        })
    );

    // A later release replaces it.
    let id2 = pass(&mut c, &[8; 32], "2025.07");
    let now = approved(&c).unwrap();
    assert_eq!(
        (now.bundle_sha256, now.version, now.proposal_id),
        (vec![8; 32], "2025.07".to_string(), id2)
    );
}

#[test]
fn only_a_member_admin_proposes_a_release() {
    let mut c = Chain::with_validators(&[]);
    let patient = key(40);
    c.enrol(&patient);
    assert_eq!(
        c.send(&patient, release(&[7; 32], "v1")),
        Code::NotAuthorized.value()
    );
    c.resync();
    let stranger = key(41);
    assert_eq!(
        c.send(&stranger, release(&[7; 32], "v1")),
        Code::UnknownSigner.value()
    );
    c.resync();
    assert_eq!(last_proposal(&c), 0, "no proposal was opened");
    assert_eq!(approved(&c), None);
}

#[test]
fn a_bad_hash_or_label_is_refused_with_its_code() {
    let mut c = Chain::with_validators(&[]);
    for (hash, version, code) in [
        (vec![7; 31], "v1", Code::BadReleaseHash),
        (vec![7; 33], "v1", Code::BadReleaseHash),
        (vec![], "v1", Code::BadReleaseHash),
        (vec![7; 32], "", Code::BadReleaseVersion),
        (vec![7; 32], "v 1", Code::BadReleaseVersion),
        (vec![7; 32], &"v".repeat(33), Code::BadReleaseVersion),
    ] {
        assert_eq!(
            c.send(&admin(HOSP), release(&hash, version)),
            code.value(),
            "{} bytes, {version:?}",
            hash.len()
        );
        c.resync();
    }
    assert_eq!(last_proposal(&c), 0, "no proposal was opened");
}

#[test]
fn the_approved_release_cannot_be_proposed_again() {
    let mut c = Chain::with_validators(&[]);
    pass(&mut c, &[7; 32], "v1");
    assert_eq!(
        c.send(&admin(HOSP), release(&[7; 32], "v1-again")),
        Code::ReleaseUnchanged.value()
    );
    c.resync();

    // Two open proposals of the same new release: the second to pass FAILS and changes nothing.
    c.ok(&admin(HOSP), release(&[9; 32], "v2"));
    let first = last_proposal(&c);
    c.ok(&admin(LAB), release(&[9; 32], "v2-dup"));
    let second = last_proposal(&c);
    c.ok(&admin(LAB), vote(first));
    c.ok(&admin(INSURER), vote(first));
    c.ok(&admin(HOSP), vote(second));
    c.ok(&admin(INSURER), vote(second));
    let p: Proposal = c.get(&keys::proposal(second)).unwrap();
    assert_eq!(p.status, ProposalStatus::Failed as i32, "{}", p.outcome);
    assert!(
        p.outcome.contains("already the approved one"),
        "{}",
        p.outcome
    );
    assert_eq!(approved(&c).unwrap().version, "v2");
}

fn app_state(web_release: serde_json::Value) -> Vec<u8> {
    let member = serde_json::json!({"id": "hospital-a", "name": "A", "kind": "hospital",
        "admin_key": hex::encode(pk(&admin(HOSP)))});
    serde_json::to_vec(&serde_json::json!({ "members": [member], "web_release": web_release }))
        .unwrap()
}

#[test]
fn genesis_sets_the_release_and_refuses_a_bad_one() {
    let hash = hex::encode([5u8; 32]);
    let genesis = app_state(serde_json::json!({"bundle_sha256": hash, "version": "localnet"}));
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(dir.path()).unwrap();
    l.init_chain_with_keys(CHAIN, 1, &genesis, &[], &[])
        .unwrap();
    assert_eq!(
        l.store()
            .get_msg::<WebRelease>(&keys::web_release())
            .unwrap(),
        Some(WebRelease {
            bundle_sha256: vec![5; 32],
            version: "localnet".into(),
            height: 0,
            proposal_id: 0,
        })
    );
    for bad in [
        serde_json::json!({"bundle_sha256": hex::encode([5u8; 31]), "version": "v1"}),
        serde_json::json!({"bundle_sha256": "zz", "version": "v1"}),
        serde_json::json!({"bundle_sha256": hash, "version": ""}),
        serde_json::json!({"bundle_sha256": hash}),
        serde_json::json!({"bundle_sha256": hash, "version": "v1", "extra": 1}),
    ] {
        assert!(
            genesis_writes(&app_state(bad.clone()), &[]).is_err(),
            "{bad} was accepted"
        );
    }
}
