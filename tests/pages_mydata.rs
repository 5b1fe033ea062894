//! "My data" on the patient page in a real browser (issue 27 point 7, issue 25 point 6): a
//! member stores a record about the patient (threshold custody, 2 of 3 keepers on the
//! localnet); the page lists it, verified, sets up downloads (RegisterPatientBoxKey, believed
//! once proven), downloads it — the keepers' shares fetched from their gateways, checked and
//! combined in the browser — and the bytes are the ones stored, byte for byte, as the CLI's
//! `vault get --patient-key` reads them too; the download appears in the history as the
//! patient's own; with the custodian's gateway down, "Download everything" still gets the record
//! from the two other keepers, as one FHIR Bundle holding the record, the consent and the
//! accesses, which HAPI's validator finds valid; axe-core finds no violation in any state.
//!
//! chromium, java and the FHIR validator must be installed (`scripts/deps.sh`); a missing one
//! fails the test.

use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use medledger_devnet::localnet::Proc;
use medledger_tx::keys;
use medledger_tx::pb;
use prost::Message;

use crate::pages::{assert_accessible, browser, click, eval, open_patient, screenshot, wait_for};
use crate::support::TestNet;

/// The record the member stores: a FHIR Observation, as a lab would send it.
const CONTENT: &str = r#"{"resourceType":"Observation","id":"obs-mine","status":"final","code":{"text":"Ferritin"},"valueQuantity":{"value":41,"unit":"ng/mL"}}"#;

/// Makes the page's downloads land in `window.__download` (base64 of the saved bytes).
fn catch_downloads(tab: &headless_chrome::Tab) {
    assert_eq!(
        eval(
            tab,
            "(() => { window.__download = ''; if (!window.__caught) { window.__caught = true; const make = URL.createObjectURL.bind(URL); URL.createObjectURL = (b) => { b.arrayBuffer().then((a) => { let s = ''; for (const x of new Uint8Array(a)) s += String.fromCharCode(x); window.__download = btoa(s); }); return make(b); }; } return 'ok' })()"
        ),
        "ok"
    );
}

/// Waits for the next download and returns its bytes.
fn downloaded(tab: &headless_chrome::Tab, what: &str) -> Vec<u8> {
    let b64 = wait_for(tab, what, "window.__download", Duration::from_secs(120));
    Base64::decode_vec(&b64).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_sets_up_downloads_downloads_a_record_byte_for_byte_and_everything_as_one_bundle(
) {
    let net = TestNet::start_with_gateways().await;
    let gateway = net.net.spec.nodes[0].gateway_url();
    let patient = net.consenting_patient(61, "hospital-a").await;
    net.vault_put(
        "lab-b",
        &patient.id,
        "Observation",
        "obs-mine",
        CONTENT.as_bytes(),
    );
    // The record is kept by 2-of-3 holders; each holder's replica follows the anchor.
    let (value, _) = net
        .client(0)
        .query_raw(&keys::record("obs-mine"), 0)
        .await
        .unwrap();
    let anchor = pb::RecordAnchor::decode(value.expect("anchored").as_slice()).unwrap();
    assert_eq!(anchor.holders.len(), 3, "{:?}", anchor.holders);
    assert_eq!(anchor.threshold, 2);
    let deadline = Instant::now() + Duration::from_secs(60);
    for member in &anchor.holders {
        let i = net
            .net
            .spec
            .nodes
            .iter()
            .position(|n| &n.name == member)
            .unwrap();
        let key = net
            .net
            .gateway_dir(i)
            .join("data/keys")
            .join(format!("{}.key", hex::encode("obs-mine")));
        while !key.exists() {
            assert!(Instant::now() < deadline, "{member} never got its share");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let key_json = serde_json::json!({
        "name": "mine",
        "public_key": hex::encode(patient.key.verifying_key().to_bytes()),
        "secret_key": hex::encode(patient.key.to_bytes()),
    })
    .to_string();
    let key_file = net.home().join("patient-mine.json");
    std::fs::write(&key_file, &key_json).unwrap();

    let (g, k, p) = (gateway.clone(), key_json.clone(), patient.id.clone());
    let (browser, tab, one) = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().unwrap();
        open_patient(&tab, &g, &k, &p);
        let row = "document.querySelector('tr.record-row[data-record-id=\"obs-mine\"]')";
        wait_for(
            &tab,
            "the record listed, verified",
            &format!("{row}?.getAttribute('data-verified') === 'yes'"),
            Duration::from_secs(60),
        );
        let text = eval(&tab, &format!("{row}.innerText"));
        assert!(text.contains("Lab result (Observation)"), "{text}");
        assert!(text.contains("any 2 open it"), "{text}");
        assert!(
            eval(&tab, "document.querySelector('#mydata-summary').textContent")
                .contains("every record verified")
        );
        wait_for(
            &tab,
            "downloads not set up yet",
            "document.querySelector('#mydata-setup')?.getAttribute('data-box-key') === 'absent'",
            Duration::from_secs(30),
        );
        assert_accessible(&tab, "my data listed, downloads not set up");

        // Set up downloads: the key registered, believed once the proven state shows it.
        click(&tab, "#mydata-setup-button");
        wait_for(
            &tab,
            "downloads set up, proven",
            "document.querySelector('#mydata-done')?.getAttribute('data-kind') === 'ok' && document.querySelector('#mydata-setup')?.getAttribute('data-box-key') === 'registered'",
            Duration::from_secs(60),
        );
        let done = eval(&tab, "document.querySelector('#mydata-done').textContent");
        assert!(done.contains("The ledger confirms it"), "{done}");
        assert_accessible(&tab, "downloads set up");

        // One record: decrypted in the browser from the keepers' shares.
        catch_downloads(&tab);
        click(&tab, "button.download-record[data-record-id=\"obs-mine\"]");
        let one = downloaded(&tab, "the record's download");
        let done = eval(&tab, "document.querySelector('#mydata-done').textContent");
        assert!(done.contains("Saved record obs-mine"), "{done}");
        // The download is in the history, verified, as the patient's own: "You", "Your own copy".
        wait_for(
            &tab,
            "the download in the access history",
            "[...document.querySelectorAll('tr.access-row[data-record-id=\"obs-mine\"]')].some((r) => r.getAttribute('data-verified') === 'yes' && r.textContent.includes('Your own copy') && r.querySelector('td[data-label=\"Who\"]')?.textContent.startsWith('You'))",
            Duration::from_secs(60),
        );
        assert_accessible(&tab, "a record downloaded");
        screenshot(&tab, "patient-my-data.png", "#mydata-heading");
        (browser, tab, one)
    })
    .await
    .unwrap();
    assert_eq!(
        one,
        CONTENT.as_bytes(),
        "the page's download is the record stored"
    );

    // The CLI reads the same bytes with the patient's key file.
    let out = net.home().join("obs-mine.cli");
    let r = net.cli(&[
        "vault",
        "get",
        "--patient-key",
        key_file.to_str().unwrap(),
        "obs-mine",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "vault get --patient-key");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        one,
        "the CLI and the page read the same bytes"
    );

    // The custodian's gateway goes down: the other two keepers still give the page the record.
    let custodian = net
        .net
        .spec
        .nodes
        .iter()
        .position(|n| n.name == anchor.custodian)
        .unwrap();
    assert_ne!(custodian, 0, "the page's own gateway stays up");
    net.kill9(custodian, Proc::Gateway);

    let everything = tokio::task::spawn_blocking(move || {
        let _browser = browser;
        // Everything as one Bundle.
        catch_downloads(&tab);
        click(&tab, "#download-everything");
        let everything = downloaded(&tab, "everything");
        assert_eq!(
            eval(
                &tab,
                "document.querySelector('#mydata-done').getAttribute('data-records')"
            ),
            "1"
        );
        let done = eval(&tab, "document.querySelector('#mydata-done').textContent");
        assert!(done.contains("1 record(s)"), "{done}");
        assert_accessible(&tab, "everything downloaded");
        everything
    })
    .await
    .unwrap();

    let bundle: serde_json::Value = serde_json::from_slice(&everything).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().unwrap();
    let of = |t: &str| {
        entries
            .iter()
            .filter(|e| e["resource"]["resourceType"] == t)
            .count()
    };
    let stored: serde_json::Value = serde_json::from_str(CONTENT).unwrap();
    assert!(
        entries.iter().any(|e| e["resource"] == stored),
        "the record is in the Bundle"
    );
    assert_eq!(of("Consent"), 1, "the patient's consent");
    assert!(
        of("AuditEvent") >= 3,
        "the page's two downloads and the CLI's are in the history: {}",
        of("AuditEvent")
    );
    crate::hapi::assert_valid(&[("the patient page's download of everything".into(), bundle)]);
}
