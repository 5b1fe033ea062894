//! The patient page in a real browser (Debian's chromium, headless, driven over the DevTools
//! protocol) against a localnet whose nodes run their gateways: the patient opens their key,
//! grants a consent with a click (signed in the browser), a practitioner system's read appears
//! live as "verified" (the browser checked its proof against a BLS checkpoint certificate), the
//! patient revokes; and behind a gateway that alters one answer, that row shows "NOT verified".
//!
//! chromium must be installed (`scripts/deps.sh` installs Debian's package); a missing browser
//! fails the test.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use headless_chrome::{Browser, LaunchOptions, Tab};
use medledger_tx::pb::{self, tx_body::Msg, Purpose};
use support::TestNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn browser() -> Browser {
    let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .expect("chromium is installed (scripts/deps.sh installs Debian's package)");
    Browser::new(
        LaunchOptions::default_builder()
            .path(Some(path))
            .headless(true)
            // Tests run as root in CI, where chromium's sandbox cannot start.
            .sandbox(false)
            .window_size(Some((390, 844)))
            .idle_browser_timeout(Duration::from_secs(300))
            .build()
            .unwrap(),
    )
    .expect("chromium starts")
}

/// Evaluates `js` in the page and returns its value as a string ("" for null/undefined).
fn eval(tab: &Tab, js: &str) -> String {
    let r = tab.evaluate(js, false).unwrap();
    match r.value {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// Waits until `js` evaluates to a truthy string, or fails with what the page shows.
fn wait_for(tab: &Tab, what: &str, js: &str, timeout: Duration) -> String {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        let v = eval(tab, js);
        if !v.is_empty() && v != "false" {
            eprintln!("{what}: after {:?}", start.elapsed());
            return v;
        }
        if Instant::now() > deadline {
            let status = eval(tab, "document.querySelector('#status')?.textContent");
            let body = eval(tab, "document.body.innerText.slice(0, 3000)");
            panic!("timed out waiting for {what}\n#status: {status}\npage:\n{body}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn click(tab: &Tab, selector: &str) {
    tab.wait_for_element(selector).unwrap().click().unwrap();
}

/// Opens the patient page at `base` and the key in `key_json` (pasted, as from a file).
fn open_patient(tab: &Tab, base: &str, key_json: &str, patient_id: &str) {
    tab.navigate_to(&format!("{base}/patient")).unwrap();
    tab.wait_until_navigated().unwrap();
    // Pasted in one go (typing it key by key over DevTools takes a minute).
    let set = format!(
        "(() => {{ const t = document.querySelector('#key-paste'); t.value = {}; t.dispatchEvent(new Event('input')); return 'ok' }})()",
        serde_json::Value::String(key_json.to_string())
    );
    tab.wait_for_element("#key-paste").unwrap();
    assert_eq!(eval(tab, &set), "ok");
    click(tab, "#key-open");
    let shown = wait_for(
        tab,
        "the patient id",
        "document.querySelector('#patient-id')?.textContent",
        Duration::from_secs(30),
    );
    assert_eq!(shown, patient_id);
}

const ROW_VERIFIED: &str =
    "document.querySelector('tr.access-row[data-index=\"0\"]')?.getAttribute('data-verified')";

/// A gateway in the middle: relays everything to `upstream`, but changes one character of the
/// value in every answer about an access event (`/rpc/abci_query` for `access/…/{n}`).
async fn tampering_proxy(upstream: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let http = Arc::new(reqwest::Client::new());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (http, upstream) = (http.clone(), upstream.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let Ok(r) = http.get(format!("{upstream}{target}")).send().await else {
                    return;
                };
                let status = r.status().as_u16();
                let ct = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let mut body = r.bytes().await.unwrap_or_default().to_vec();
                if target.starts_with("/rpc/abci_query") {
                    body = tamper_access_event(&body);
                }
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    url
}

/// Flips one base64 character of `result.response.value` when the key is an access event.
fn tamper_access_event(body: &[u8]) -> Vec<u8> {
    use base64ct::{Base64, Encoding};
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let r = &mut v["result"]["response"];
    let key = r["key"]
        .as_str()
        .and_then(|k| Base64::decode_vec(k).ok())
        .unwrap_or_default();
    let key = String::from_utf8_lossy(&key);
    if !(key.starts_with("access/") && !key.ends_with("/count")) {
        return body.to_vec();
    }
    if let Some(value) = r["value"].as_str() {
        let mut chars: Vec<char> = value.chars().collect();
        // A character inside the event's actor string: still valid base64, different bytes.
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        r["value"] = serde_json::Value::String(chars.into_iter().collect());
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_grants_sees_a_read_live_and_verified_revokes_and_tampering_shows() {
    let net = TestNet::start_with_gateways().await;
    let gateway = net.net.spec.nodes[0].gateway_url();
    let c = net.client(0);
    let hospital = net.member_key("hospital-a");
    let alice = SigningKey::from_bytes(&[101; 32]);
    let pid = medledger_tx::ids::patient_id(&alice.verifying_key().to_bytes());
    net.enrol_patient(0, &alice).await;
    // The CLI's key file, as the patient would open it.
    let key_json = serde_json::json!({
        "name": "alice",
        "public_key": hex::encode(alice.verifying_key().to_bytes()),
        "secret_key": hex::encode(alice.to_bytes()),
    })
    .to_string();

    let (g, k, p) = (gateway.clone(), key_json.clone(), pid.clone());
    let browser = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().unwrap();
        open_patient(&tab, &g, &k, &p);
        wait_for(
            &tab,
            "the live subscription",
            "document.querySelector('#live')?.textContent === 'live'",
            Duration::from_secs(30),
        );
        // Grant with the form: signed in the browser, committed by the ledger, then verified.
        click(&tab, "#grant-grantee");
        tab.type_str("hospital-a").unwrap();
        click(&tab, "#grant-class");
        tab.type_str("Observation").unwrap();
        eval(
            &tab,
            "(() => { const s = document.querySelector('#grant-purpose'); s.value = 'TREAT'; s.dispatchEvent(new Event('change')); return 'ok' })()",
        );
        click(&tab, "#grant-submit");
        wait_for(
            &tab,
            "the granted consent, verified",
            "document.querySelector('tr.consent-row[data-status=\"active\"][data-verified=\"yes\"]')?.getAttribute('data-consent-id')",
            Duration::from_secs(60),
        );
        (browser, tab)
    })
    .await
    .unwrap();
    let (browser, tab) = browser;
    // The key never left the browser: the ledger holds the patient's own signature.
    let (v, _) = c
        .query_raw(&medledger_tx::keys::consent("c-1"), 0)
        .await
        .unwrap();
    assert!(v.is_some(), "the page's grant is on the ledger");

    // hospital-a's system reads; the page shows it without a reload, verified.
    let r = c
        .submit(&hospital, support::read(&pid, "obs-live"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let tab = tokio::task::spawn_blocking(move || {
        let verified = wait_for(&tab, "the live access row, verified", ROW_VERIFIED, Duration::from_secs(60));
        assert_eq!(verified, "yes");
        let row = eval(
            &tab,
            "(() => { const r = document.querySelector('tr.access-row[data-index=\"0\"]'); return r.getAttribute('data-actor') + '|' + r.getAttribute('data-record-id') + '|' + r.textContent })()",
        );
        assert!(row.starts_with("hospital-a|obs-live|"), "{row}");
        assert!(row.contains("verified") && !row.contains("NOT verified"), "{row}");
        // The patient revokes with a click.
        click(&tab, "tr.consent-row button.revoke");
        wait_for(
            &tab,
            "the revoked consent",
            "document.querySelector('tr.consent-row[data-consent-id=\"c-1\"]')?.getAttribute('data-status') === 'revoked'",
            Duration::from_secs(60),
        );
        tab
    })
    .await
    .unwrap();
    drop(tab);
    // And the ledger refuses hospital-a from then on.
    let r = c
        .submit(
            &hospital,
            Msg::LogAccess(pb::LogAccess {
                patient_id: pid.clone(),
                record_id: "obs-after".into(),
                data_class: "Observation".into(),
                purpose: Purpose::Treat as i32,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code_name, "NO_PERMITTING_CONSENT", "{}", r.log);

    // The same page behind a gateway that alters the access event's bytes: NOT verified, in red.
    let proxy = tampering_proxy(gateway).await;
    tokio::task::spawn_blocking(move || {
        let tab = browser.new_tab().unwrap();
        open_patient(&tab, &proxy, &key_json, &pid);
        let verified = wait_for(
            &tab,
            "the tampered row",
            &format!("{ROW_VERIFIED} === 'no' ? 'no' : ''"),
            Duration::from_secs(60),
        );
        assert_eq!(verified, "no");
        let row = eval(
            &tab,
            "(() => { const r = document.querySelector('tr.access-row[data-index=\"0\"]'); const b = [...r.querySelectorAll('*')].find(e => e.children.length === 0 && e.textContent.includes('NOT verified')); return b ? b.textContent + '|' + getComputedStyle(b).color : r.textContent })()",
        );
        assert!(row.contains("NOT verified"), "{row}");
        // Red: the red channel dominates.
        let rgb: Vec<u32> = row
            .rsplit('|')
            .next()
            .unwrap()
            .trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        assert!(rgb.len() == 3 && rgb[0] > 150 && rgb[1] < 100 && rgb[2] < 100, "NOT verified is red: {row}");
    })
    .await
    .unwrap();
}
