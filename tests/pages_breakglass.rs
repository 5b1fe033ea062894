//! Break-glass up front (issue 27, point 6), in a real browser (headless chromium) on a localnet
//! whose nodes run their gateways. A physician of hospital-a reads the patient's record without
//! consent through the CLI (`tx access break-glass`): the patient page, open all along, shows a
//! banner at its top — who by name, role and member, what, when — verified, waiting for review.
//! A privacy officer of another member (lab-b) reviews it through the CLI (`tx access review`):
//! the banner says "reviewed: justified" and names the reviewer and their member. axe-core finds
//! no violation with the banner shown, and the banner is absent while there is no emergency.
//!
//! The reason: the CLI stores its text at hospital-a's gateway once the tx commits
//! (`PUT /break-glass/{patient}/{index}/reason`), and the page fetches it from there (the endpoint
//! proven, `gateway/hospital-a`) and shows it checked against the hash on chain. The gateway
//! refuses, each with its status: another practitioner's PUT (403), a text whose SHA-256 is not
//! the ledger's (422), more than 1 KiB (413), an event that does not exist (404), the PUT at
//! another member's gateway (421), and a GET by a member that may not read the patient (403).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use ed25519_dalek::SigningKey;
use medledger_tx::pb::PractitionerRole;

use crate::pages::{assert_accessible, browser, eval, open_patient, screenshot, wait_for};
use medledger_gateway::client::GatewayClient;

use crate::support::TestNet;

/// A signed request (RFC 9421) by `key` to `gateway`: its status and body.
async fn signed(
    gateway: &str,
    key: &SigningKey,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    let (status, body) = GatewayClient::new(gateway, key.clone())
        .send_raw(method, path, body.to_vec(), &[])
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

const REASON: &str = "Unconscious on arrival; allergies unknown";

/// The banner's entry for the newest emergency access: `index|verified|review|text`.
const BANNER: &str = "(() => { const b = document.querySelector('#break-glass'); const li = b && !b.hidden && b.querySelector('li'); return li ? [li.dataset.index, li.dataset.verified, li.dataset.review, li.innerText.replace(/\\s+/g, ' ')].join('|') : '' })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_glass_read_is_a_verified_banner_naming_the_physician_then_its_reviewer() {
    let net = TestNet::start_with_gateways().await;
    let gateway = net.net.spec.nodes[0].gateway_url();
    // hospital-a holds one of alice's lab results; no consent lets anyone read it.
    let alice = net.patient_with_record(121, "obs-bg").await;
    let pid = alice.id.clone();
    let (doctor, officer) = (
        SigningKey::from_bytes(&[122; 32]),
        SigningKey::from_bytes(&[123; 32]),
    );
    net.register_practitioner(
        "hospital-a",
        &doctor,
        "Dr Ana Silva",
        PractitionerRole::Physician,
    )
    .await;
    net.register_practitioner(
        "lab-b",
        &officer,
        "Bo Berg",
        PractitionerRole::PrivacyOfficer,
    )
    .await;
    net.keyring.import("doctor", &doctor).unwrap();
    net.keyring.import("officer", &officer).unwrap();
    let key_json = alice.key_file_json("alice");

    // No emergency yet: no banner.
    let (g, p) = (gateway.clone(), pid.clone());
    let (browser, tab) = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().unwrap();
        open_patient(&tab, &g, &key_json, &p);
        wait_for(
            &tab,
            "the (empty) history, verified",
            "document.querySelector('#verdict')?.getAttribute('data-verdict') === 'ok'",
            Duration::from_secs(60),
        );
        assert_eq!(
            eval(&tab, "document.querySelector('#break-glass').hidden"),
            "true"
        );
        (browser, tab)
    })
    .await
    .unwrap();

    // The physician breaks the glass through the CLI.
    net.tx_ok(
        "doctor",
        &[
            "access",
            "break-glass",
            "--patient",
            &pid,
            "--record",
            "obs-bg",
            "--class",
            "Observation",
            "--reason",
            REASON,
        ],
    );
    // The CLI stored the reason at hospital-a's gateway: the patient reads it there.
    let path = format!("/break-glass/{pid}/0/reason");
    let (status, text) = signed(&gateway, &alice.key, "GET", &path, b"").await;
    assert_eq!((status, text.as_str()), (200, REASON));
    // Only the practitioner who broke the glass stores it, only its own text, at most 1 KiB,
    // only for an event there is, at the gateway of its member.
    let (status, body) = signed(&gateway, &officer, "PUT", &path, REASON.as_bytes()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = signed(&gateway, &doctor, "PUT", &path, b"Routine check").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("the ledger holds"), "{body}");
    let (status, body) = signed(&gateway, &doctor, "PUT", &path, &[b'x'; 1025]).await;
    assert_eq!(status, 413, "{body}");
    let missing = format!("/break-glass/{pid}/9/reason");
    let (status, body) = signed(&gateway, &doctor, "PUT", &missing, REASON.as_bytes()).await;
    assert_eq!(status, 404, "{body}");
    let lab = net.net.spec.nodes[1].gateway_url();
    let (status, body) = signed(&lab, &doctor, "PUT", &path, REASON.as_bytes()).await;
    assert_eq!(status, 421, "{body}");
    // Storing the same text again changes nothing.
    let (status, body) = signed(&gateway, &doctor, "PUT", &path, REASON.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    // A member that may not read the patient gets nothing; an event with no reason kept: 404.
    let insurer = net.member_key("insurer-c");
    let (status, body) = signed(&gateway, &insurer, "GET", &path, b"").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = signed(&gateway, &alice.key, "GET", &missing, b"").await;
    assert_eq!(status, 404, "{body}");
    let tab = tokio::task::spawn_blocking(move || {
        let shown = wait_for(&tab, "the break-glass banner, verified", BANNER, Duration::from_secs(60));
        let parts: Vec<&str> = shown.splitn(4, '|').collect();
        assert_eq!(&parts[..3], ["0", "yes", "PENDING"], "{shown}");
        let text = parts[3];
        assert!(
            text.contains("Emergency access without your consent: Dr Ana Silva, doctor at Hospital A read Lab result (Observation) (record obs-bg) on ")
                && text.contains("Review: waiting for review")
                && text.contains("A privacy officer of a member other than Hospital A reviews it.")
                && text.contains("Checked: verified"),
            "{text}"
        );
        // The reason, fetched from hospital-a's gateway and checked against the hash on chain.
        let reason = wait_for(
            &tab,
            "the reason, checked",
            "(() => { const r = document.querySelector('#break-glass li .reason'); return r && r.dataset.reason === 'checked' && r.textContent })()",
            Duration::from_secs(30),
        );
        assert_eq!(
            reason,
            format!("Reason given (checked against the ledger): \"{REASON}\"")
        );
        // At the top: above the key and the tables.
        assert_eq!(
            eval(&tab, "document.querySelector('#break-glass').compareDocumentPosition(document.querySelector('#key-section')) & Node.DOCUMENT_POSITION_FOLLOWING ? 'above' : 'below'"),
            "above"
        );
        assert_eq!(
            eval(&tab, "document.querySelector('#break-glass').getAttribute('data-count')"),
            "1"
        );
        // The row in the table says the same.
        assert_eq!(
            eval(&tab, "document.querySelector('tr.access-row[data-index=\"0\"]').dataset.breakGlass"),
            "yes"
        );
        assert_accessible(&tab, "patient page, break-glass banner waiting for review");
        tab
    })
    .await
    .unwrap();

    // A privacy officer of another member (lab-b) reviews it.
    net.tx_ok(
        "officer",
        &[
            "access",
            "review",
            "--patient",
            &pid,
            "--index",
            "0",
            "--verdict",
            "justified",
            "--note",
            "Emergency confirmed by the admission record",
        ],
    );
    tokio::task::spawn_blocking(move || {
        let shown = wait_for(
            &tab,
            "the banner saying the review",
            &format!(
                "(() => {{ const s = {BANNER}; return s.split('|')[2] === 'JUSTIFIED' && s }})()"
            ),
            Duration::from_secs(60),
        );
        let parts: Vec<&str> = shown.splitn(4, '|').collect();
        assert_eq!(&parts[..3], ["0", "yes", "JUSTIFIED"], "{shown}");
        assert!(
            parts[3].contains("Review: reviewed: justified")
                && parts[3].contains("Reviewed by Bo Berg, privacy officer at Lab B")
                && parts[3].contains("Checked: verified"),
            "{shown}"
        );
        assert_eq!(
            eval(
                &tab,
                "document.querySelector('#break-glass li').dataset.namesVerified"
            ),
            "yes"
        );
        screenshot(&tab, "patient-break-glass.png", "#break-glass");
        assert_accessible(&tab, "patient page, break-glass banner reviewed");
        drop(browser);
    })
    .await
    .unwrap();
}
