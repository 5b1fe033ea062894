//! "Report this access" (issue 27, point 6), in a real browser (headless chromium) on a localnet
//! whose nodes run their gateways. A physician of hospital-a reads the patient's lab result under
//! the patient's consent (CLI `tx access log`); the patient page shows the row with a "Report"
//! button named for it. The patient picks a reason in the dialog, confirms, and the page signs
//! ReportAccess with the patient's key and says "Reported" only once a certified state proves the
//! event reported; the row then says the review is pending. A privacy officer of another member
//! (lab-b) upholds the report through the CLI (`tx access review-report`): the row names the
//! officer and their member. axe-core finds no violation with the dialog open and after. A second
//! report of the same access, through the CLI, is refused with 151 ALREADY_REPORTED.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use ed25519_dalek::SigningKey;
use medledger_tx::pb::PractitionerRole;

use crate::pages::{
    assert_accessible, browser, click, click_and_confirm, eval, open_patient, screenshot, wait_for,
};
use crate::support::TestNet;

/// The report part of access row 0: `review|text` (`|` when the row has none).
const ROW_REPORT: &str = "(() => { const s = document.querySelector('tr.access-row[data-index=\"0\"] .report-status'); return s ? s.dataset.reportReview + '|' + s.textContent : '' })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_reports_an_access_in_the_page_and_sees_the_officers_verdict() {
    let net = TestNet::start_with_gateways().await;
    let gateway = net.net.spec.nodes[0].gateway_url();
    // alice lets hospital-a read her lab results for treatment.
    let alice = net.consenting_patient(131, "hospital-a").await;
    let pid = alice.id.clone();
    let (doctor, officer) = (
        SigningKey::from_bytes(&[132; 32]),
        SigningKey::from_bytes(&[133; 32]),
    );
    net.register_practitioner(
        "hospital-a",
        &doctor,
        "Dr Ada Lovelace",
        PractitionerRole::Physician,
    )
    .await;
    net.register_practitioner(
        "lab-b",
        &officer,
        "Grace Hopper",
        PractitionerRole::PrivacyOfficer,
    )
    .await;
    net.keyring.import("doctor", &doctor).unwrap();
    net.keyring.import("officer", &officer).unwrap();
    net.keyring.import("alice", &alice.key).unwrap();
    // The physician reads under the consent.
    net.tx_ok(
        "doctor",
        &[
            "access",
            "log",
            "--patient",
            &pid,
            "--record",
            "obs-rep",
            "--class",
            "Observation",
            "--purpose",
            "TREAT",
        ],
    );

    let key_json = alice.key_file_json("alice");
    let (g, p) = (gateway.clone(), pid.clone());
    let (browser, tab) = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().unwrap();
        open_patient(&tab, &g, &key_json, &p);
        let label = wait_for(
            &tab,
            "the row's Report button",
            "document.querySelector('tr.access-row[data-index=\"0\"] button.report')?.getAttribute('aria-label')",
            Duration::from_secs(60),
        );
        assert_eq!(label, "Report access #0 by Dr Ada Lovelace, doctor");
        // The button opens the dialog (a click that lands while the table re-renders is retried).
        let mut opened = false;
        for _ in 0..5 {
            click(&tab, "tr.access-row[data-index=\"0\"] button.report");
            if eval(&tab, "String(!!document.querySelector('#report-dialog')?.open)") == "true" {
                opened = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(opened, "the Report button opened no dialog");
        assert_eq!(
            eval(&tab, "document.activeElement?.id"),
            "report-reason",
            "the reason list has the focus"
        );
        assert_accessible(&tab, "patient page, report dialog open");
        assert_eq!(
            eval(&tab, "(() => { const s = document.querySelector('#report-reason'); s.value = '2'; return s.selectedOptions[0].textContent })()"),
            "They are not involved in my care"
        );
        let asked = click_and_confirm(&tab, "#report-dialog button.send");
        assert!(
            asked.starts_with("Report access #0 by Dr Ada Lovelace, doctor (\"They are not involved in my care\")?"),
            "{asked}"
        );
        let status = wait_for(
            &tab,
            "the report, proven",
            "(() => { const t = document.querySelector('#status')?.textContent ?? ''; return t.startsWith('Reported') && t })()",
            Duration::from_secs(90),
        );
        assert!(
            status.starts_with("Reported — a privacy officer of another member will review it. The ledger confirms it (committed at height ")
                && status.contains("verified at certified height"),
            "{status}"
        );
        let shown = wait_for(&tab, "the row's report, pending", ROW_REPORT, Duration::from_secs(60));
        assert_eq!(
            shown,
            "PENDING|Reported by you: review pending (you said: they are not involved in my care)"
        );
        assert_eq!(
            eval(&tab, "String(!!document.querySelector('tr.access-row[data-index=\"0\"] button.report'))"),
            "false",
            "a reported row has no Report button"
        );
        assert_accessible(&tab, "patient page, access reported");
        (browser, tab)
    })
    .await
    .unwrap();

    // Reporting it again (here through the CLI) is refused with its code.
    let out = net.tx(
        "alice",
        &["patient", "report", "--event", "0", "--reason", "other"],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("ALREADY_REPORTED (151)"), "{said}");

    // lab-b's privacy officer upholds the report.
    net.tx_ok(
        "officer",
        &[
            "access",
            "review-report",
            "--patient",
            &pid,
            "--index",
            "0",
            "--verdict",
            "upheld",
            "--note",
            "No treatment relationship on that day",
        ],
    );
    tokio::task::spawn_blocking(move || {
        let shown = wait_for(
            &tab,
            "the officer's verdict",
            &format!("(() => {{ const s = {ROW_REPORT}; return s.startsWith('UNJUSTIFIED|') && s }})()"),
            Duration::from_secs(60),
        );
        assert!(
            shown.starts_with("UNJUSTIFIED|Your report was upheld by Grace Hopper, privacy officer (Lab B): the access was not justified"),
            "{shown}"
        );
        screenshot(&tab, "patient-report.png", "#accesses");
        assert_accessible(&tab, "patient page, report upheld");
        drop(browser);
    })
    .await
    .unwrap();
}
