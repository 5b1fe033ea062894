//! Overload on a real 4-validator chain whose blocks are capped at 40,000 bytes (about 220 tx/s),
//! so that a sender on two cores can offer several times its capacity (issue 15). Behaviour
//! only, with margins that hold on a busy machine (issue 24): the rates, the plateau ratio and
//! collapse detection are `medledger bench grid`'s and `bench starve`'s verdicts
//! (docs/performance.md), not this test's.
//! - **past capacity**: offered 300 and 900 tx/s, the chain keeps committing in both cells and
//!   loses nothing it accepted;
//! - **under a flood**: members offer half the capacity while patient keys and unknown keys
//!   flood at three times it; every member tx sent commits, none is lost, and the flood reached
//!   the blocks (so the members got in beside it, not for want of one).
//!
//! Both run `medledger bench` itself on throwaway localnets at a free port range, one after the
//! other, holding the machine (`support::exclusive`): no other test's localnet runs beside them.

use std::process::Command;

use serde_json::Value;

use crate::support;

/// A base port whose node ports (base + 10 i + 0..6, four nodes) are all free now.
fn free_base_port() -> u16 {
    let start = 20_000 + (std::process::id() % 400) as u16 * 50;
    (0..200u16)
        .map(|k| start.wrapping_add(k * 50))
        .find(|&base| {
            (0..4u16).all(|i| {
                (0..6u16)
                    .all(|p| std::net::TcpListener::bind(("127.0.0.1", base + 10 * i + p)).is_ok())
            })
        })
        .expect("a free range of 40 ports")
}

/// Runs `medledger -o json bench <args>` in a temp home: (exit code, parsed stdout).
fn bench(args: &[&str]) -> (i32, Value) {
    let home = tempfile::tempdir().expect("temp home");
    let base = free_base_port().to_string();
    let out = Command::new(support::medledger_bin())
        .arg("--home")
        .arg(home.path())
        .args(["-o", "json", "bench"])
        .args(args)
        .args(["--base-port", &base, "--quiet"])
        .output()
        .expect("medledger runs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bench printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn past_capacity_and_under_a_flood_the_chain_commits_and_loses_nothing() {
    let _machine = support::exclusive();
    let (code, cells) = bench(&[
        "grid",
        "--rates",
        "300,900",
        "--connections",
        "4",
        "--duration",
        "12",
        "--broadcast",
        "async",
        "--max-block-bytes",
        "40000",
        "--patients",
        "50",
    ]);
    let _ = code; // exit 2 is the bench's verdict on the ratio, a benchmark's business
    let cells = cells.as_array().expect("grid cells");
    assert_eq!(cells.len(), 2);
    for c in cells {
        eprintln!(
            "offered {} sent/s {} committed/s {} lost {} rejected {}",
            c["offered_tx_per_s"],
            c["sent_tx_per_s"],
            c["committed_tx_per_s"],
            c["uncommitted"],
            c["rejected"]
        );
        assert_eq!(n(c, "uncommitted"), 0, "nothing accepted is lost: {c}");
        assert!(
            n(c, "committed_tx_per_s") > 0,
            "the chain keeps committing: {c}"
        );
    }

    let (code, starve) = bench(&["starve", "--duration", "12", "--patients", "50"]);
    let _ = code; // exit 2 is the bench's verdict on the members' rate
    let members = &starve["members"];
    assert_eq!(n(members, "uncommitted"), 0, "{members}");
    assert!(n(members, "sent") > 0, "{members}");
    assert_eq!(
        n(members, "committed"),
        n(members, "sent"),
        "every member tx sent under the flood commits: {members}"
    );
    // Besides the members' txs, a block holds at most one certificate: the rest is flood.
    assert!(
        n(&starve, "txs_in_blocks") > n(members, "committed") + n(&starve, "blocks"),
        "the flood reached the blocks (its patient-signed txs pass CheckTx): {starve}"
    );
}
