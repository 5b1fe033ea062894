//! Refused attempts are visible (issue 27 point 5), in a real browser (headless chromium) on a
//! localnet whose nodes run their gateways. lab-b, which the patient never granted a consent,
//! logs an access to the patient's lab result through the CLI (`tx access log`): the ledger
//! refuses it (NO_PERMITTING_CONSENT) and records the attempt in the patient's proven list
//! `refused/{patient}/…`. The patient page, open all along, shows "Lab B tried to read your Lab
//! result (Observation) — refused (no consent)", verified, and axe-core finds no violation with
//! the list empty and with the attempt shown.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use crate::pages::{assert_accessible, browser, eval, open_patient, screenshot, wait_for};
use crate::support::TestNet;

/// The newest refused attempt shown: `index|verified|text`.
const ROW: &str = "(() => { const t = document.querySelector('#refused'); const tr = t && !t.hidden && t.querySelector('tr.refused-row'); return tr ? [tr.dataset.index, tr.dataset.verified, tr.innerText.replace(/\\s+/g, ' ')].join('|') : '' })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_read_by_a_member_without_consent_is_shown_to_the_patient_verified() {
    let net = TestNet::start_with_gateways().await;
    let gateway = net.net.spec.nodes[0].gateway_url();
    let alice = net.patient_with_record(131, "obs-rf").await;
    let (pid, key_json) = (alice.id.clone(), alice.key_file_json("alice"));

    // Nobody was refused yet: the list is proven empty.
    let (g, p) = (gateway.clone(), pid.clone());
    let (browser, tab) = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().unwrap();
        open_patient(&tab, &g, &key_json, &p);
        let summary = wait_for(
            &tab,
            "the (empty) list of refused attempts, verified",
            "document.querySelector('#verdict')?.getAttribute('data-verdict') === 'ok' && document.querySelector('#refused-summary')?.textContent",
            Duration::from_secs(60),
        );
        assert!(
            summary.starts_with("No one was refused access to your data (verified"),
            "{summary}"
        );
        assert_eq!(eval(&tab, "document.querySelector('#refused').hidden"), "true");
        assert_accessible(&tab, "patient page, no refused attempt");
        (browser, tab)
    })
    .await
    .unwrap();

    // lab-b, without any consent, logs a read through the CLI: refused, exit status 1.
    let out = net.tx(
        "lab-b",
        &[
            "access",
            "log",
            "--patient",
            &pid,
            "--record",
            "obs-rf",
            "--class",
            "Observation",
            "--purpose",
            "TREAT",
        ],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("NO_PERMITTING_CONSENT (28)"), "{said}");

    tokio::task::spawn_blocking(move || {
        let shown = wait_for(
            &tab,
            "the refused attempt, verified",
            &format!("(() => {{ const s = {ROW}; return s.split('|')[1] === 'yes' && s }})()"),
            Duration::from_secs(60),
        );
        let parts: Vec<&str> = shown.splitn(3, '|').collect();
        assert_eq!(&parts[..2], ["0", "yes"], "{shown}");
        assert!(
            parts[2].contains("Lab B tried to read your Lab result (Observation) — refused (no consent)")
                && parts[2].contains("record obs-rf")
                && parts[2].contains("verified"),
            "{shown}"
        );
        let summary = eval(&tab, "document.querySelector('#refused-summary').textContent");
        assert!(
            summary.starts_with("1 attempt(s) to see your data were refused by the ledger; the list is complete and every entry verified."),
            "{summary}"
        );
        // The refusal is not an access: the history stays empty, and the page's verdict is green.
        assert_eq!(
            eval(&tab, "String(document.querySelectorAll('tr.access-row').length)"),
            "0"
        );
        assert_eq!(
            eval(&tab, "document.querySelector('#verdict').getAttribute('data-verdict')"),
            "ok"
        );
        // Below the access history.
        assert_eq!(
            eval(&tab, "document.querySelector('#accesses-section').nextElementSibling.id"),
            "refused-section"
        );
        screenshot(&tab, "patient-refused.png", "#refused-section");
        assert_accessible(&tab, "patient page, a refused attempt shown");
        drop(browser);
    })
    .await
    .unwrap();
}
