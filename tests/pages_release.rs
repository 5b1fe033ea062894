//! The pages' code trust (issue 27, "Code trust"), on a localnet whose nodes run their gateways,
//! in a real browser (headless chromium). The localnet's genesis approves the release the
//! binary embeds: the gateway serves it and says so (`GET /pages/release`), `medledger web
//! check` recomputes the same hash from the served files and finds it approved on chain, and
//! the page shows its release hash, proven to be the approved one. The patient remembers the
//! key on the device under a passphrase (mistyped and short passphrases refused, nothing stored
//! in clear in IndexedDB), unlocks it after a reload (a wrong passphrase said plainly), and
//! forgets it. Then a governance proposal approves another release: the gateway answers 503 for
//! the pages naming both hashes, and `medledger web check` fails (exit 1).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use medledger_tx::pb::{self, submit_proposal::Action, tx_body::Msg};

use crate::pages::{browser, click, click_and_confirm, eval, open_patient, wait_for};
use crate::support::{self, TestNet};

/// The release hash the `medledger` binary embeds (`medledger web hash`).
fn embedded_hash() -> String {
    let out = std::process::Command::new(support::medledger_bin())
        .args(["web", "hash"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let h = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(h.len(), 64, "{h}");
    h
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// `medledger -o json web check GATEWAY EXTRA… --node NODE0`: its exit status and report.
fn web_check(t: &TestNet, gateway: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = t.cli(&[&["-o", "json", "web", "check", gateway][..], extra].concat());
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("web check printed no JSON ({e}): {out:?}"));
    (out.status.code().unwrap(), report)
}

/// Sets the value of input `sel` as a person types it.
fn type_into(tab: &headless_chrome::Tab, sel: &str, text: &str) {
    let js = format!(
        "(() => {{ const i = document.querySelector({}); i.value = {}; i.dispatchEvent(new Event('input')); return 'ok' }})()",
        serde_json::Value::String(sel.into()),
        serde_json::Value::String(text.into())
    );
    assert_eq!(eval(tab, &js), "ok");
}

/// The sealed key IndexedDB holds, as JSON ("" when none).
fn stored_key(tab: &headless_chrome::Tab) -> String {
    let r = tab
        .evaluate(
            "new Promise((ok, no) => { const r = indexedDB.open('medledger', 1); r.onupgradeneeded = () => r.result.createObjectStore('keys'); r.onerror = () => no(r.error); r.onsuccess = () => { const g = r.result.transaction('keys').objectStore('keys').get('patient'); g.onsuccess = () => { r.result.close(); ok(g.result ? JSON.stringify(g.result) : '') }; g.onerror = () => no(g.error) } })",
            true,
        )
        .unwrap();
    match r.value {
        Some(serde_json::Value::String(s)) => s,
        v => panic!("IndexedDB read: {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_only_the_approved_release_and_the_page_remembers_an_encrypted_key() {
    let net = TestNet::start_with_gateways().await;
    let gateway = net.net.spec.nodes[0].gateway_url();
    let hash = embedded_hash();

    // A fresh localnet approves the release the binary embeds, and its gateway says so.
    let (status, body) = get(&format!("{gateway}/pages/release")).await;
    assert_eq!(status, 200, "{body}");
    let release: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(release["status"], "approved", "{release}");
    assert_eq!(release["served"], hash.as_str());
    assert_eq!(release["approved"], hash.as_str());
    assert_eq!(release["version"], "localnet");
    assert_eq!(release["height"], 0, "set by genesis");
    // The manifest's SHA-256 is the release hash.
    let manifest = reqwest::get(format!("{gateway}/pages/manifest"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&manifest)), hash);

    // `web check` fetches every file, recomputes the hash and finds it approved on chain.
    let (code, report) = web_check(&net, &gateway, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"], "match", "{report}");
    assert_eq!(report["served"], hash.as_str());
    assert_eq!(report["approved"], hash.as_str());
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["verified_by"], "node header");
    // End to end from the genesis file: an app hash signed by > 2/3 of the consortium.
    let genesis = net.net.dir.join("hospital-a/cometbft/config/genesis.json");
    let (code, report) = web_check(&net, &gateway, &["--genesis", genesis.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"], "match", "{report}");
    assert_eq!(report["verified_by"], "light-client header", "{report}");

    let alice = SigningKey::from_bytes(&[111; 32]);
    let pid = medledger_tx::ids::patient_id(&alice.verifying_key().to_bytes());
    net.enrol_patient(0, &alice).await;
    let secret = hex::encode(alice.to_bytes());
    let key_json = serde_json::json!({
        "name": "alice",
        "public_key": hex::encode(alice.verifying_key().to_bytes()),
        "secret_key": secret,
    })
    .to_string();

    let (g, h, p) = (gateway.clone(), hash.clone(), pid.clone());
    tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().unwrap();
        open_patient(&tab, &g, &key_json, &p);
        // The page shows its release hash, proven against the chain to be the approved one.
        assert_eq!(
            eval(&tab, "document.querySelector('#release-hash').textContent"),
            h
        );
        let said = wait_for(
            &tab,
            "the release proven to be the approved one",
            "(() => { const s = document.querySelector('#release-status'); return s.getAttribute('data-release') === 'verified' && s.textContent })()",
            Duration::from_secs(60),
        );
        assert!(said.contains("approved on chain"), "{said}");

        // Remember the key: mistyped and short passphrases are refused, nothing is stored.
        assert_eq!(eval(&tab, "document.querySelector('#remember-box').hidden"), "false");
        // Nothing is remembered yet: no "Forget" button is shown (rendered, not only marked).
        assert_eq!(eval(&tab, "document.querySelector('#key-forget').offsetParent === null"), "true");
        type_into(&tab, "#remember-pass", "blue meadow 42");
        type_into(&tab, "#remember-pass2", "blue meadow 43");
        click(&tab, "#remember-save");
        let err = wait_for(&tab, "mistyped passphrases refused", "document.querySelector('#remember-msg').textContent", Duration::from_secs(10));
        assert!(err.contains("differ"), "{err}");
        type_into(&tab, "#remember-pass", "short");
        type_into(&tab, "#remember-pass2", "short");
        click(&tab, "#remember-save");
        wait_for(&tab, "a short passphrase refused", "document.querySelector('#remember-msg').textContent.includes('at least 8')", Duration::from_secs(10));
        assert_eq!(stored_key(&tab), "", "nothing stored after a refusal");
        type_into(&tab, "#remember-pass", "blue meadow 42");
        type_into(&tab, "#remember-pass2", "blue meadow 42");
        click(&tab, "#remember-save");
        wait_for(&tab, "the key remembered", "document.querySelector('#remember-box').hidden && !document.querySelector('#forget-box').hidden", Duration::from_secs(30));
        let stored = stored_key(&tab);
        assert!(stored.contains("\"iterations\":600000"), "{stored}");
        assert!(!stored.contains(&secret), "the key is stored in clear: {stored}");
        assert!(!stored.contains("secret_key"), "the key file is stored in clear: {stored}");

        // Next visit: the page offers to unlock it; a wrong passphrase says so.
        tab.navigate_to(&format!("{g}/patient")).unwrap();
        tab.wait_until_navigated().unwrap();
        wait_for(&tab, "the unlock box", "!document.querySelector('#unlock-box').hidden && document.querySelector('#unlock-public').textContent", Duration::from_secs(30));
        assert_eq!(eval(&tab, "document.querySelector('#patient-id').textContent"), "");
        type_into(&tab, "#unlock-pass", "blue meadow 41");
        click(&tab, "#unlock-open");
        let wrong = wait_for(&tab, "a wrong passphrase said", "(() => { const m = document.querySelector('#unlock-msg').textContent; return m.startsWith('Wrong') && m })()", Duration::from_secs(30));
        assert!(wrong.contains("Wrong passphrase"), "{wrong}");
        assert_eq!(eval(&tab, "document.querySelector('#patient-id').textContent"), "");
        type_into(&tab, "#unlock-pass", "blue meadow 42");
        click(&tab, "#unlock-open");
        let shown = wait_for(&tab, "the unlocked key signed in", "document.querySelector('#patient-id').textContent", Duration::from_secs(60));
        assert_eq!(shown, p);
        assert_eq!(eval(&tab, "document.querySelector('#unlock-box').hidden"), "true");

        // Forget it: gone from IndexedDB, and the next visit offers nothing to unlock.
        let asked = click_and_confirm(&tab, "#key-forget");
        assert!(asked.contains("Forget"), "{asked}");
        wait_for(&tab, "the key forgotten", "document.querySelector('#forget-box').hidden && document.querySelector('#forget-msg').textContent", Duration::from_secs(10));
        assert_eq!(stored_key(&tab), "");
        tab.navigate_to(&format!("{g}/patient")).unwrap();
        tab.wait_until_navigated().unwrap();
        wait_for(&tab, "the page loaded", "document.querySelector('#release-hash').textContent.length === 64", Duration::from_secs(30));
        assert_eq!(eval(&tab, "document.querySelector('#unlock-box').hidden"), "true");
    })
    .await
    .unwrap();

    // The consortium approves another release: 3 of 4 members vote yes.
    let other = [0xab_u8; 32];
    let c = net.client(0);
    let propose = Msg::SubmitProposal(pb::SubmitProposal {
        action: Some(Action::SetWebRelease(pb::SetWebRelease {
            bundle_sha256: other.to_vec(),
            version: "v2".into(),
        })),
        deadline_height: net.height(0).await + 200,
    });
    let r = c
        .submit(&net.member_key("hospital-a"), propose)
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);
    let id: u64 = r.attribute("proposal_id").unwrap().parse().unwrap();
    for m in ["lab-b", "insurer-c"] {
        let vote = Msg::VoteProposal(pb::VoteProposal {
            proposal_id: id,
            yes: true,
        });
        let r = c.submit(&net.member_key(m), vote).await.unwrap();
        assert_eq!(r.code, 0, "{m}: {} {}", r.code_name, r.log);
    }

    // Within seconds the gateway stops serving its pages, naming both hashes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, body) = loop {
        let (status, body) = get(&format!("{gateway}/patient")).await;
        if status != 200 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&hash) && body.contains(&hex::encode(other)),
        "{body}"
    );
    let (status, _) = get(&format!("{gateway}/assets/patient.js")).await;
    assert_eq!(status, 503);
    let (_, body) = get(&format!("{gateway}/pages/release")).await;
    let release: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(release["status"], "mismatch", "{release}");
    assert_eq!(release["approved"], hex::encode(other).as_str());
    assert_eq!(release["proposal_id"], id);

    // And `web check` fails: the gateway serves a release other than the approved one.
    let (code, report) = web_check(&net, &gateway, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["result"], "mismatch", "{report}");
    assert_eq!(report["served"], hash.as_str());
    assert_eq!(report["approved"], hex::encode(other).as_str());
    assert_eq!(report["version"], "v2");
}
