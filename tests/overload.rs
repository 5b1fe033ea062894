//! Overload on a real 4-validator chain whose blocks are capped at 40,000 bytes (about 220 tx/s),
//! so that a sender on two cores can offer several times its capacity (issue 15):
//! - **plateau**: offered 300 and 900 tx/s, the 900 cell is over capacity, not sender-bound,
//!   commits at least 90 % of the 300 cell, and loses nothing;
//! - **no starvation**: members offer half the capacity while patient keys and unknown keys
//!   flood at three times it; the members commit at least 90 % of what they offer.
//!
//! Both run `medledger bench` itself (its exit code is part of what is checked) on throwaway
//! localnets at a free port range, one after the other.

mod support;

use std::process::Command;

use serde_json::Value;

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
fn past_capacity_the_chain_plateaus_and_members_are_not_starved() {
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
    }
    let (low, high) = (&cells[0], &cells[1]);
    assert_eq!(
        high["sender_bound"], false,
        "the 900 cell must test the chain, not the sender: {high}"
    );
    assert!(
        n(high, "committed_tx_per_s") < 900 * 9 / 10,
        "the 900 cell is over capacity: {high}"
    );
    assert!(
        n(high, "committed_tx_per_s") * 10 >= n(low, "committed_tx_per_s") * 9,
        "past capacity the committed rate holds at 90 % or more: {low} then {high}"
    );
    assert_eq!(code, 0, "bench grid fails on a collapse or a lost tx");

    let (code, starve) = bench(&["starve", "--duration", "12", "--patients", "50"]);
    let members = &starve["members"];
    assert_eq!(n(members, "uncommitted"), 0, "{members}");
    assert_eq!(n(members, "committed"), n(members, "sent"), "{members}");
    assert!(
        n(&starve, "members_committed_pct") >= 90,
        "members commit at least 90 % of what they offer under the flood: {starve}"
    );
    // Besides the members' txs, a block holds at most one certificate: the rest is flood.
    assert!(
        n(&starve, "txs_in_blocks") > n(members, "committed") + n(&starve, "blocks"),
        "the flood reached the blocks (its patient-signed txs pass CheckTx): {starve}"
    );
    assert_eq!(code, 0);
}
