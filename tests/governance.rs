//! Governance on a real CometBFT localnet: a fifth member, a second lab, joins the running
//! consortium as a validator by vote (3 of 4 yes), signs blocks and checkpoint certificates, and
//! is removed again by vote (4 of 5 yes); the chain keeps committing throughout and certificates
//! keep verifying for an auditor who trusts only the genesis file.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use medledger_client::verify::{attest, verify_key, Trust};
use medledger_devnet::localnet::{NodePorts, JOINING_MEMBER};
use medledger_query::certificate::CertTrust;
use medledger_tx::pb::{self, submit_proposal::Action, tx_body::Msg, MemberKind};
use medledger_tx::{ids, keys};
use tendermint::account;
use tendermint_rpc::{Client as _, Paging};

use crate::support::TestNet;

fn propose(action: Action, deadline_height: u64) -> Msg {
    Msg::SubmitProposal(pb::SubmitProposal {
        action: Some(action),
        deadline_height,
    })
}

fn vote(proposal_id: u64) -> Msg {
    Msg::VoteProposal(pb::VoteProposal {
        proposal_id,
        yes: true,
    })
}

/// Addresses in CometBFT's validator set at `height`.
async fn validator_set(t: &TestNet, height: u64) -> Vec<account::Id> {
    let h = tendermint::block::Height::try_from(height).unwrap();
    t.client(0)
        .rpc()
        .validators(h, Paging::All)
        .await
        .unwrap()
        .validators
        .into_iter()
        .map(|v| v.address)
        .collect()
}

/// Whether `who` signed (precommitted) the block of `height`, per the commit in block `height`.
async fn signed(t: &TestNet, height: u64, who: account::Id) -> bool {
    let h = tendermint::block::Height::try_from(height).unwrap();
    let commit = t.client(0).rpc().commit(h).await.unwrap();
    commit
        .signed_header
        .commit
        .signatures
        .iter()
        .any(|s| s.is_commit() && s.validator_address() == Some(who))
}

/// Submits `msg` signed by `member` and requires it to be applied; returns the report.
async fn ok(t: &TestNet, member: &str, msg: Msg) -> medledger_client::TxReport {
    let r = t
        .client(0)
        .submit(&t.member_key(member), msg)
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{member}: {} {}", r.code_name, r.log);
    r
}

fn has_event(r: &medledger_client::TxReport, kind: &str) -> bool {
    r.events.iter().any(|e| e.kind == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_lab_joins_by_vote_signs_blocks_and_is_removed_by_vote() {
    let mut t = TestNet::start().await;
    let founders = [0, 1, 2, 3];
    let genesis = std::fs::read(t.net.dir.join("hospital-a/cometbft/config/genesis.json")).unwrap();
    let trust = Trust::Certificates(CertTrust::from_genesis_json(&genesis).unwrap());
    let mut heights = vec![t.height(0).await];

    // lab-e starts as a full node of the running chain and catches up.
    let (name, display, _) = JOINING_MEMBER;
    let joining = t
        .net
        .add_node(name, NodePorts::free().unwrap(), &t.keyring)
        .unwrap();
    let e = joining.index;
    t.net.start_node(e).unwrap();
    t.wait_all(&[e], heights[0] + 2).await;
    let lab_e = account::Id::new(ids::validator_address(&joining.consensus_key));
    assert!(!validator_set(&t, t.height(0).await).await.contains(&lab_e));

    // hospital-a proposes; lab-b and insurer-c vote yes: 30 of 40 > 2/3.
    let add = Action::AddMember(pb::AddMember {
        id: name.into(),
        name: display.into(),
        kind: MemberKind::Lab as i32,
        admin_key: joining.admin_key.to_vec(),
        validator_pub_key: joining.consensus_key.to_vec(),
        power: 10,
        bls_key: joining.bls_key.clone(),
        bls_pop: joining.bls_pop.clone(),
    });
    let r = ok(&t, "hospital-a", propose(add, t.height(0).await + 100)).await;
    let id: u64 = r.attribute("proposal_id").unwrap().parse().unwrap();
    let r = ok(&t, "lab-b", vote(id)).await;
    assert!(
        !has_event(&r, "medledger.governance.passed"),
        "20 of 40 is not enough"
    );
    let r = ok(&t, "insurer-c", vote(id)).await;
    assert!(
        has_event(&r, "medledger.governance.passed"),
        "{:?}",
        r.events
    );
    let added_at = r.height;
    heights.push(added_at);

    // CometBFT applies the update two heights later, and lab-e signs blocks.
    t.wait_all(&founders, added_at + 3).await;
    assert!(!validator_set(&t, added_at + 1).await.contains(&lab_e));
    assert!(validator_set(&t, added_at + 2).await.contains(&lab_e));
    let mut signed_at = None;
    for h in added_at + 2..added_at + 40 {
        t.wait_all(&[0], h + 1).await;
        if signed(&t, h, lab_e).await {
            signed_at = Some(h);
            break;
        }
    }
    let signed_at = signed_at.expect("lab-e precommitted a block within 40 heights of joining");
    heights.push(signed_at);

    // Its checkpoint signatures go into certificates, and an auditor trusting only genesis
    // verifies those certificates by handing trust over at the change.
    let mut in_certificate = false;
    for state in added_at + 1..added_at + 40 {
        t.wait_all(&[0], state + 3).await;
        // A block whose proposer lacked the extensions carries no certificate: try the next.
        let Ok(a) = attest(&t.client(0), &trust, state).await else {
            continue;
        };
        assert_eq!(
            a.validator_count, 5,
            "state {state} is certified by the 5-validator set"
        );
        if a.signers.iter().any(|s| s == name) {
            in_certificate = true;
            break;
        }
    }
    assert!(in_certificate, "lab-e's BLS share appears in a certificate");
    let member = verify_key(&t.client(1), &trust, &keys::member(name), 0)
        .await
        .unwrap();
    assert!(
        member.value.is_some(),
        "lab-e is a member, proven by a certificate"
    );

    // The new member governs: lab-b proposes removing it, lab-e itself agrees. 30 of 50 is
    // not enough now; hospital-d's yes makes 40 of 50.
    let r = ok(
        &t,
        "lab-b",
        propose(
            Action::RemoveMember(pb::RemoveMember {
                member_id: name.into(),
            }),
            t.height(0).await + 100,
        ),
    )
    .await;
    let id: u64 = r.attribute("proposal_id").unwrap().parse().unwrap();
    ok(&t, "hospital-a", vote(id)).await;
    let r = ok(&t, "insurer-c", vote(id)).await;
    assert!(
        !has_event(&r, "medledger.governance.passed"),
        "30 of 50 is not enough"
    );
    let r = ok(&t, "hospital-d", vote(id)).await;
    assert!(
        has_event(&r, "medledger.governance.passed"),
        "{:?}",
        r.events
    );
    let removed_at = r.height;
    heights.push(removed_at);

    // Out of the set two heights later; the chain keeps committing on every node.
    t.wait_all(&[0, 1, 2, 3, e], removed_at + 5).await;
    assert!(validator_set(&t, removed_at + 1).await.contains(&lab_e));
    assert!(!validator_set(&t, removed_at + 2).await.contains(&lab_e));
    let hashes = t.app_hashes_at(&[0, 1, 2, 3, e], removed_at + 4).await;
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "app hashes differ: {hashes:?}"
    );
    heights.push(t.height(0).await);
    assert!(
        heights.windows(2).all(|w| w[0] < w[1]),
        "heights keep increasing: {heights:?}"
    );

    // Certificates after the removal verify too (two handovers), with the 4 founders.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gone = verify_key(&t.client(2), &trust, &keys::member(name), 0)
        .await
        .unwrap();
    assert_eq!(gone.value, None, "lab-e is proven absent");
    assert!(gone.height > removed_at + 1);
    assert_eq!(gone.attestation.validator_count, 4);
    assert!(gone.attestation.signed_power * 3 > gone.attestation.total_power * 2);
}
