//! An upgrade end to end on a real localnet: governance schedules app version 2 for a height;
//! the block at that height migrates the state on every upgraded node, and CometBFT's headers
//! carry version 2 from the next block on; a node still running
//! the previous release stops before that block instead of diverging, and once restarted on
//! the new release replays it and rejoins with the same app hash.

use medledger_devnet::localnet::Proc;
use medledger_tx::pb::{self, submit_proposal::Action, tx_body::Msg};
use medledger_tx::{keys, pb::UpgradePlan};
use prost::Message;
use tendermint_rpc::Client as _;

use crate::support::TestNet;

/// hospital-d runs as the previous release (app version 1 only).
const OLD: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voted_upgrade_migrates_at_its_height_and_an_old_release_stops_before_it() {
    let t = TestNet::start().await;
    t.net.stop(OLD, Proc::CometBft, false).unwrap();
    t.net.stop(OLD, Proc::App, false).unwrap();
    t.net
        .start_with_env(OLD, Proc::App, &[("MEDLEDGER_PRETEND_APP_VERSION", "1")])
        .unwrap();
    t.net.start(OLD, Proc::CometBft).unwrap();
    let c = t.client(0);
    let now = t.height(0).await;
    t.wait_all(&[OLD], now).await;

    // Three of four members schedule v2 twenty blocks ahead (votes take a block or two each).
    let at = now + 20;
    let propose = Msg::SubmitProposal(pb::SubmitProposal {
        action: Some(Action::ScheduleUpgrade(pb::ScheduleUpgrade {
            name: "v2".into(),
            height: at,
            app_version: 2,
        })),
        deadline_height: now + 15,
    });
    let r = c
        .submit(&t.member_key("hospital-a"), propose)
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let id: u64 = r.attribute("proposal_id").unwrap().parse().unwrap();
    for voter in ["lab-b", "insurer-c"] {
        let vote = Msg::VoteProposal(pb::VoteProposal {
            proposal_id: id,
            yes: true,
        });
        let r = c.submit(&t.member_key(voter), vote).await.unwrap();
        assert_eq!(r.code, 0, "{}", r.log);
    }
    let (plan, _) = c.query_raw(&keys::upgrade_plan(), 0).await.unwrap();
    let plan = UpgradePlan::decode(plan.expect("the plan is in state").as_slice()).unwrap();
    assert_eq!(
        (plan.height, plan.app_version, plan.proposal_id),
        (at, 2, id)
    );
    assert!(t.height(0).await < at, "voted in time");

    // The upgraded nodes apply it in block `at`: version 2 from that state on, plan gone.
    let upgraded = [0, 1, 2];
    t.wait_all(&upgraded, at + 3).await;
    let version = |h: u64| {
        let c = t.client(1);
        async move {
            let (v, _) = c.query_raw(&keys::app_version(), h).await.unwrap();
            v.as_deref().and_then(keys::decode_u64)
        }
    };
    assert_eq!(version(at - 1).await, None, "version 1 before");
    assert_eq!(version(at).await, Some(2));
    assert_eq!(
        c.query_raw(&keys::upgrade_plan(), at).await.unwrap().0,
        None
    );
    // CometBFT carries it too: every header from block `at + 1` (the first built on the
    // upgraded state) says app version 2, and Info answers 2 (what state sync checks).
    for (height, expected) in [(at, 1), (at + 1, 2), (at + 2, 2)] {
        let (header, _) = c.light_block(height).await.unwrap();
        assert_eq!(
            header.header.version.app, expected,
            "app version in header {height}"
        );
    }
    let info = c.rpc().abci_info().await.unwrap();
    assert_eq!(info.app_version, 2, "{info:?}");

    // The old release stopped before executing block `at`, saying why.
    // (Its CometBFT may have shut down when the app dropped the connection: no height then.)
    let stuck = t.client(OLD).latest_height().await.ok();
    assert!(
        stuck.is_none_or(|h| h < at),
        "the old release is at {stuck:?}, not before {at} (MEDLEDGER_PRETEND_APP_VERSION needs a \
         binary built with --features fault-injection, as scripts/test.sh builds it)"
    );
    let log = std::fs::read_to_string(t.net.log_file(OLD, Proc::App)).unwrap();
    assert!(log.contains("needs app version 2"), "{log}");

    // Restarted on the new release, it replays block `at` and follows.
    t.net.stop(OLD, Proc::CometBft, false).unwrap();
    t.net.stop(OLD, Proc::App, false).unwrap();
    t.net.start_node(OLD).unwrap();
    let later = t.height(0).await + 2;
    t.wait_all(&[0, OLD], later).await;
    let hashes = t.app_hashes_at(&[0, 1, 2, OLD], later).await;
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
}
