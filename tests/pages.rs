//! The pages in a real browser (Debian's chromium, headless, driven over the DevTools protocol)
//! against a localnet whose nodes run their gateways. The gateway reads patient-linked state only
//! for a named requester: anonymous reads answer 401, a patient's token reading another patient
//! answers 403. The patient opens their key (which signs the gateway's token request), grants a
//! consent with a click (signed in the browser), a member system's read appears live as
//! "verified" (the page polls the certified height and checks every proof against a BLS
//! checkpoint certificate), the patient revokes; the auditor page opens a member admin's key file
//! and verifies the patient's history. Behind a gateway that alters one answer, that row shows
//! "NOT verified"; behind one that answers a broadcast "OK" without forwarding it, the revoke is
//! shown as not confirmed, never as verified. Issue 27: the revoke asks for confirmation, the
//! banner reflects the worst row, the consortium fingerprint pinned on first use stops the page
//! (red, no rows) when it changes until accepted — also when a gateway swaps member ids or raises
//! a validator's power in genesis — and a certified height older than one the browser has seen
//! is an error; the state's age is shown, another key clears everything, an outage says so and
//! recovers by itself; rows are in plain words (names, roles, record types, purposes, newest
//! first) with the technical details behind "How is this checked?"; the consent form refuses an
//! unknown grantee and research without a study before signing; and axe-core (web's
//! devDependency) finds no accessibility violation in any state of either page.
//!
//! chromium must be installed (`scripts/deps.sh` installs Debian's package); a missing browser
//! fails the test.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use headless_chrome::{Browser, LaunchOptions, Tab};
use medledger_tx::pb::{self, tx_body::Msg, PractitionerRole, Purpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{self, TestNet};

pub(crate) fn browser() -> Browser {
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
pub(crate) fn eval(tab: &Tab, js: &str) -> String {
    let r = tab.evaluate(js, false).unwrap();
    match r.value {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// Waits until `js` evaluates to a truthy string, or fails with what the page shows.
pub(crate) fn wait_for(tab: &Tab, what: &str, js: &str, timeout: Duration) -> String {
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

/// Clicks the element `selector` finds. The page re-renders its tables at each new certified
/// height, so an element found may be replaced before its box is measured (headless_chrome then
/// times out finding its midpoint, before any mouse event): such a click is tried again on the
/// element found anew.
pub(crate) fn click(tab: &Tab, selector: &str) {
    let mut tries = 0;
    loop {
        match tab
            .wait_for_element(selector)
            .and_then(|e| e.click().map(|_| ()))
        {
            Ok(()) => return,
            Err(e) if tries < 4 => {
                eprintln!("click {selector}: {e}; trying again");
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("click {selector}: {e}"),
        }
    }
}

/// Pastes `key_json` (as from a key file) into the page's key box and opens it.
fn paste_key(tab: &Tab, key_json: &str) {
    // Pasted in one go (typing it key by key over DevTools takes a minute).
    let set = format!(
        "(() => {{ const t = document.querySelector('#key-paste'); t.value = {}; t.dispatchEvent(new Event('input')); return 'ok' }})()",
        serde_json::Value::String(key_json.to_string())
    );
    tab.wait_for_element("#key-paste").unwrap();
    assert_eq!(eval(tab, &set), "ok");
    click(tab, "#key-open");
}

/// Opens the patient page at `base` and the key in `key_json`: the page signs in to the gateway
/// with it and shows the patient id it proved.
pub(crate) fn open_patient(tab: &Tab, base: &str, key_json: &str, patient_id: &str) {
    tab.navigate_to(&format!("{base}/patient")).unwrap();
    tab.wait_until_navigated().unwrap();
    paste_key(tab, key_json);
    let shown = wait_for(
        tab,
        "the patient id",
        "document.querySelector('#patient-id')?.textContent",
        Duration::from_secs(30),
    );
    assert_eq!(shown, patient_id);
}

/// Makes the page's `window.confirm` answer yes, remembering the question in
/// `window.__confirmed` (a real dialog would block the DevTools session).
fn accept_confirm(tab: &Tab) {
    assert_eq!(
        eval(
            tab,
            "(() => { window.__confirmed = ''; window.confirm = (m) => { window.__confirmed = String(m); return true }; return 'ok' })()"
        ),
        "ok"
    );
}

/// Clicks the button `selector` finds, answers its confirmation dialog with yes, and returns the
/// question asked. A click that lands while the page re-renders its tables (at each new certified
/// height, which can move the button under the pointer on a busy machine) asks nothing: it is
/// clicked again, on the button found anew, until the page asks.
pub(crate) fn click_and_confirm(tab: &Tab, selector: &str) -> String {
    accept_confirm(tab);
    for _ in 0..5 {
        click(tab, selector);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let asked = eval(tab, "window.__confirmed");
            if !asked.is_empty() {
                return asked;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("click {selector}: the page asked nothing; clicking again");
    }
    panic!("clicking {selector} never asked for a confirmation");
}

/// With `MEDLEDGER_SCREENSHOTS=DIR` set (relative to the repository root, or absolute), saves
/// what the page shows, `selector` scrolled to the top, as `DIR/name` (PNG): the README's
/// screenshots are taken this way (README, "The pages").
pub(crate) fn screenshot(tab: &Tab, name: &str, selector: &str) {
    let Some(dir) = std::env::var_os("MEDLEDGER_SCREENSHOTS") else {
        return;
    };
    eval(
        tab,
        &format!(
            "document.querySelector({})?.scrollIntoView()",
            serde_json::Value::String(selector.into())
        ),
    );
    std::thread::sleep(Duration::from_millis(300));
    let png = tab
        .capture_screenshot(
            headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption::Png,
            None,
            None,
            true,
        )
        .expect("a screenshot");
    // A relative DIR is taken from the repository root (tests run in tests/).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
        .join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The status line's text and kind (`ok`, `warn`, `error`, `info`).
fn status(tab: &Tab) -> String {
    eval(
        tab,
        "(() => { const s = document.querySelector('#status'); return s.className + '|' + s.textContent })()",
    )
}

/// axe-core's source (web's devDependency: `npm ci` in web/ installs it).
fn axe_source() -> &'static str {
    static SRC: OnceLock<String> = OnceLock::new();
    SRC.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../web/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `npm ci` in web/)", path.display()))
    })
}

/// Runs axe-core in the page as it is now (`state` names it in a failure): no violation of any
/// rule axe runs by default (WCAG 2 A and AA, best practices).
pub(crate) fn assert_accessible(tab: &Tab, state: &str) {
    let loaded = eval(tab, "typeof window.axe === 'object'");
    if loaded != "true" {
        tab.evaluate(&format!("{};0", axe_source()), false).unwrap();
    }
    let r = tab
        .evaluate(
            "axe.run(document, { resultTypes: ['violations'] }).then(r => JSON.stringify(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) }))))",
            true,
        )
        .unwrap();
    let found = match r.value {
        Some(serde_json::Value::String(s)) => s,
        v => panic!("axe did not run in state {state}: {v:?}"),
    };
    assert_eq!(found, "[]", "axe-core violations in state {state}");
    // Tables are readable at 390 px: nothing is wider than the window.
    let wide = eval(
        tab,
        "document.documentElement.scrollWidth > window.innerWidth",
    );
    assert_eq!(
        wide, "false",
        "the page is wider than the window in state {state}"
    );
}

/// `POST /auth/token` signed as the CLI signs vault requests (RFC 9421): the bearer token.
async fn token(gateway: &str, key: &SigningKey) -> (String, serde_json::Value) {
    let url = format!("{gateway}/auth/token");
    let headers = medledger_gateway::client::sign_headers(
        key,
        "POST",
        &url,
        b"",
        medledger_gateway::client::now_secs(),
    )
    .unwrap();
    let mut rb = reqwest::Client::new().post(&url).body(Vec::new());
    for (k, v) in &headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let j: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(status, 200, "token: {j}");
    assert_eq!(j["token_type"], "Bearer", "{j}");
    let t = j["access_token"].as_str().unwrap_or_default().to_string();
    assert!(
        t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()),
        "{j}"
    );
    (t, j["subject"].clone())
}

/// `GET /rpc/abci_query` of `key` through the gateway, with `token` if any: the HTTP status.
async fn gateway_query(gateway: &str, key: &[u8], token: Option<&str>) -> u16 {
    let url = format!(
        "{gateway}/rpc/abci_query?path=%22/store%22&data=0x{}&height=0&prove=true",
        hex::encode(key)
    );
    let mut rb = reqwest::Client::new().get(&url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    rb.send().await.unwrap().status().as_u16()
}

const ROW_VERIFIED: &str =
    "document.querySelector('tr.access-row[data-index=\"0\"]')?.getAttribute('data-verified')";

/// What the tampering proxy does besides altering access events, switched while it runs.
#[derive(Default)]
struct Switches {
    /// Every connection is closed unanswered: the gateway is down.
    down: AtomicBool,
    /// The genesis it serves: 0 as it is, [`SWAP_MEMBER_IDS`] or [`RAISE_POWER`].
    genesis: AtomicU8,
}

/// Genesis with the ids of the first two validator members swapped (their keys' proofs of
/// possession still verify: they cover the BLS key only).
const SWAP_MEMBER_IDS: u8 = 1;
/// Genesis with the first validator's power raised so that it alone holds more than 2/3.
const RAISE_POWER: u8 = 2;

/// A gateway in the middle: relays every request (method, headers, body) to `upstream`, but
/// changes one character of the value in every answer about an access event (`/rpc/abci_query`
/// for `access/…/{n}`), and answers `broadcast_tx_commit` with code 0 at the upstream's latest
/// height without forwarding the tx. Its [`Switches`] take it down or make it serve another
/// consortium's genesis.
async fn tampering_proxy(upstream: String) -> (String, Arc<Switches>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let http = Arc::new(reqwest::Client::new());
    let switches = Arc::new(Switches::default());
    let sw = switches.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            if sw.down.load(Ordering::SeqCst) {
                drop(sock);
                continue;
            }
            let (http, upstream, sw) = (http.clone(), upstream.clone(), sw.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap_or("").split_whitespace();
                let method = first.next().unwrap_or("GET").to_string();
                let target = first.next().unwrap_or("/").to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = buf[head_end..].to_vec();
                while body.len() < len {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                let (status, ct, retry_after, answer) =
                    if target.starts_with("/rpc/broadcast_tx_commit") {
                        (
                            200,
                            "application/json".to_string(),
                            None,
                            dropped_broadcast(&http, &upstream).await,
                        )
                    } else {
                        let m = reqwest::Method::from_bytes(method.as_bytes())
                            .unwrap_or(reqwest::Method::GET);
                        let mut rb = http.request(m, format!("{upstream}{target}")).body(body);
                        for (k, v) in &headers {
                            if !matches!(k.as_str(), "host" | "content-length" | "connection") {
                                rb = rb.header(k.as_str(), v.as_str());
                            }
                        }
                        let Ok(r) = rb.send().await else {
                            return;
                        };
                        let header = |name: &str| {
                            r.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string)
                        };
                        let ct = header("content-type")
                            .unwrap_or_else(|| "application/octet-stream".to_string());
                        let retry_after = header("retry-after");
                        let status = r.status().as_u16();
                        let mut answer = r.bytes().await.unwrap_or_default().to_vec();
                        if target.starts_with("/rpc/abci_query") {
                            answer = tamper_access_event(&answer);
                        }
                        if target.starts_with("/rpc/genesis") {
                            answer = tamper_genesis(&answer, sw.genesis.load(Ordering::SeqCst));
                        }
                        (status, ct, retry_after, answer)
                    };
                let retry = retry_after
                    .map(|v| format!("retry-after: {v}\r\n"))
                    .unwrap_or_default();
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: {ct}\r\n{retry}content-length: {}\r\nconnection: close\r\n\r\n",
                    answer.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&answer).await;
            });
        }
    });
    (url, switches)
}

/// Rewrites the consortium in a `/rpc/genesis` answer as `mode` says (0: unchanged).
fn tamper_genesis(body: &[u8], mode: u8) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let g = &mut v["result"]["genesis"];
    match mode {
        SWAP_MEMBER_IDS => {
            let members = g["app_state"]["members"].as_array_mut().unwrap();
            let with: Vec<usize> = (0..members.len())
                .filter(|&i| !members[i]["validator"].is_null())
                .take(2)
                .collect();
            let (a, b) = (with[0], with[1]);
            let id_a = members[a]["id"].clone();
            members[a]["id"] = members[b]["id"].clone();
            members[b]["id"] = id_a;
        }
        RAISE_POWER => {
            let vs = g["validators"].as_array_mut().unwrap();
            let others: u64 = vs[1..]
                .iter()
                .map(|v| v["power"].as_str().unwrap().parse::<u64>().unwrap())
                .sum();
            vs[0]["power"] = serde_json::Value::String((others * 3).to_string());
        }
        _ => return body.to_vec(),
    }
    serde_json::to_vec(&v).unwrap()
}

/// What a dropping proxy answers to `broadcast_tx_commit`: "committed, code 0" at the latest
/// height, for a tx it never forwarded.
async fn dropped_broadcast(http: &reqwest::Client, upstream: &str) -> Vec<u8> {
    let latest = match http.get(format!("{upstream}/rpc/status")).send().await {
        Ok(r) => r.json::<serde_json::Value>().await.unwrap_or_default()["result"]["sync_info"]
            ["latest_block_height"]
            .as_str()
            .unwrap_or("1")
            .to_string(),
        Err(_) => "1".to_string(),
    };
    serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": -1,
        "result": {
            "check_tx": {"code": 0, "log": ""},
            "tx_result": {"code": 0, "log": "", "events": []},
            "hash": "00",
            "height": latest,
        }
    }))
    .unwrap()
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
    // The events only: the count and the digest stay honest (a page that reads the history by its
    // digest then finds the chain broken, and proves each event alone to show which one is wrong).
    if !key.starts_with("access/") || key.ends_with("/count") || key.ends_with("/digest") {
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
async fn the_patient_signs_in_grants_sees_reads_live_revokes_and_tampering_or_dropping_shows() {
    let net = TestNet::start_with_gateways().await;
    let gateway = net.net.spec.nodes[0].gateway_url();
    let c = net.client(0);
    let hospital = net.member_key("hospital-a");
    let alice = SigningKey::from_bytes(&[101; 32]);
    let pid = medledger_tx::ids::patient_id(&alice.verifying_key().to_bytes());
    net.enrol_patient(0, &alice).await;
    let bob = SigningKey::from_bytes(&[102; 32]);
    let bob_id = medledger_tx::ids::patient_id(&bob.verifying_key().to_bytes());
    net.enrol_patient(0, &bob).await;

    // Who reads a patient's history is named: no token, 401; bob's token on alice's, 403.
    let alice_count = medledger_tx::keys::access_count(&pid);
    assert_eq!(gateway_query(&gateway, &alice_count, None).await, 401);
    let (bob_token, subject) = token(&gateway, &bob).await;
    assert_eq!(subject["kind"], "patient", "{subject}");
    assert_eq!(subject["id"], bob_id.as_str(), "{subject}");
    assert_eq!(
        gateway_query(&gateway, &alice_count, Some(&bob_token)).await,
        403
    );
    let bob_count = medledger_tx::keys::access_count(&bob_id);
    assert_eq!(
        gateway_query(&gateway, &bob_count, Some(&bob_token)).await,
        200,
        "the same token reads its own patient's history"
    );

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
        // Before a key: accessible, with a skip link to the main content.
        tab.navigate_to(&format!("{g}/patient")).unwrap();
        tab.wait_until_navigated().unwrap();
        wait_for(
            &tab,
            "the trust root",
            "document.querySelector('#trust-fingerprint')?.textContent",
            Duration::from_secs(30),
        );
        assert_eq!(
            eval(&tab, "document.querySelector('a.skip')?.getAttribute('href')"),
            "#main"
        );
        assert_accessible(&tab, "patient page, no key yet");
        open_patient(&tab, &g, &k, &p);
        wait_for(
            &tab,
            "live updates (polling the certified height)",
            "document.querySelector('#live')?.textContent === 'live'",
            Duration::from_secs(30),
        );
        // The age of the state shown: the block time proven at the certified height, fresh.
        wait_for(
            &tab,
            "the state's proven block time",
            "document.querySelector('#cert-time')?.textContent.startsWith('Ledger time ')",
            Duration::from_secs(30),
        );
        assert_eq!(
            eval(&tab, "document.querySelector('#cert-time').getAttribute('data-stale')"),
            "no"
        );
        // Mistakes the form catches before anything is signed: an id the ledger does not hold
        // (ids are case-sensitive), and research without a study.
        eval(
            &tab,
            "(() => { document.querySelector('#grant-grantee').value = 'Hospital-A'; document.querySelector('#grant-classes input[value=\"Observation\"]').checked = true; document.querySelector('#grant-submit').click(); return 'ok' })()",
        );
        let err = wait_for(
            &tab,
            "the unknown grantee, refused in words",
            "(() => { const e = document.querySelector('#grant-error'); return !e.hidden && e.textContent.includes('Hospital-A') && e.textContent })()",
            Duration::from_secs(30),
        );
        assert!(
            err.contains("no hospital, lab or other member with the id \"Hospital-A\"")
                && err.contains("Nothing was sent")
                && !err.contains("medledger"),
            "{err}"
        );
        assert_accessible(&tab, "patient page, a form error");
        eval(
            &tab,
            "(() => { document.querySelector('#grant-grantee').value = 'hospital-a'; const s = document.querySelector('#grant-purpose'); s.value = 'HRESCH'; s.dispatchEvent(new Event('change')); document.querySelector('#grant-submit').click(); return 'ok' })()",
        );
        assert_eq!(eval(&tab, "document.querySelector('#grant-study-box').hidden"), "false");
        wait_for(
            &tab,
            "research without a study, refused",
            "document.querySelector('#grant-error').textContent.includes('id of the study')",
            Duration::from_secs(30),
        );
        assert_accessible(&tab, "patient page, the research study field");
        eval(
            &tab,
            "(() => { document.querySelector('#grant-grantee').value = ''; document.querySelector('#grant-classes input[value=\"Observation\"]').checked = false; const s = document.querySelector('#grant-purpose'); s.value = 'TREAT'; s.dispatchEvent(new Event('change')); return 'ok' })()",
        );
        assert_eq!(
            eval(&tab, "document.querySelectorAll('tr.consent-row').length"),
            "0",
            "nothing was granted"
        );
        // Grant with the form: signed in the browser, committed by the ledger, then proven.
        click(&tab, "#grant-grantee");
        tab.type_str("hospital-a").unwrap();
        tab.press_key("Tab").unwrap();
        // Leaving the field, the page names the member the id belongs to: a line that appears
        // above the list of data classes, so the click below waits for it rather than race the
        // layout (a click whose press and release land on different boxes clicks nothing).
        wait_for(
            &tab,
            "the grantee named",
            "document.querySelector('#grant-grantee-name').textContent.includes('That is Hospital A')",
            Duration::from_secs(30),
        );
        // Data classes are picked from the list of FHIR resource types.
        click(&tab, "#grant-classes input[name=\"grant-class\"][value=\"Observation\"]");
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
        wait_for(
            &tab,
            "the grant's status: committed and verified",
            "document.querySelector('#status')?.textContent.includes('and verified at certified height')",
            Duration::from_secs(60),
        );
        assert!(status(&tab).starts_with("status ok|"), "{}", status(&tab));
        assert_accessible(&tab, "patient page, a consent granted");
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

    // hospital-a's system reads, then one of its physicians; the page shows both without a
    // reload, verified, newest first, in words: who by name (and role), what, why.
    let r = c
        .submit(&hospital, support::read(&pid, "obs-live"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let doctor = SigningKey::from_bytes(&[103; 32]);
    let r = c
        .submit(
            &hospital,
            Msg::RegisterPractitioner(pb::RegisterPractitioner {
                public_key: doctor.verifying_key().to_bytes().to_vec(),
                role: PractitionerRole::Physician as i32,
                licence_hash: vec![1; 32],
                name: "Dr Ana Silva".into(),
                key_proof: medledger_tx::keyproof::prove(
                    &doctor,
                    &net.chain_id,
                    medledger_tx::keyproof::REGISTER_PRACTITIONER,
                    "hospital-a",
                )
                .to_vec(),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);
    let r = c
        .submit(&doctor, support::read(&pid, "obs-doctor"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);
    let bob_json = serde_json::json!({
        "name": "bob",
        "public_key": hex::encode(bob.verifying_key().to_bytes()),
        "secret_key": hex::encode(bob.to_bytes()),
    })
    .to_string();
    let b_id = bob_id.clone();
    let tab = tokio::task::spawn_blocking(move || {
        let verified = wait_for(&tab, "the live access row, verified", ROW_VERIFIED, Duration::from_secs(60));
        assert_eq!(verified, "yes");
        wait_for(
            &tab,
            "the physician's access, verified",
            "document.querySelector('tr.access-row[data-index=\"1\"]')?.getAttribute('data-verified') === 'yes'",
            Duration::from_secs(60),
        );
        assert_eq!(
            eval(&tab, "document.querySelector('tr.access-row').getAttribute('data-index')"),
            "1",
            "newest first"
        );
        screenshot(&tab, "patient-page.png", "tr.access-row");
        let words = eval(
            &tab,
            "[...document.querySelectorAll('tr.access-row')].map(r => r.innerText.replace(/\\s+/g, ' ')).join(' || ')",
        );
        assert!(
            words.contains("Dr Ana Silva, doctor")
                && words.contains("Hospital A")
                && words.contains("Lab result (Observation)")
                && words.contains("Treatment")
                && words.contains("Your consent c-1"),
            "{words}"
        );
        // The technical details are behind "How is this checked?", not in the main view.
        let main = eval(&tab, "document.querySelector('main').innerText");
        for jargon in ["ICS23", "app hash", "BLS"] {
            assert!(!main.contains(jargon), "{jargon} in the main view: {main}");
        }
        click(&tab, "#how > summary");
        let how = eval(&tab, "document.querySelector('#how').innerText");
        assert!(how.contains("ICS23") && how.contains("BLS"), "{how}");
        assert_accessible(&tab, "patient page, accesses shown, details open");
        // A revoke button says which consent it revokes.
        let label = eval(&tab, "document.querySelector('tr.consent-row button.revoke').textContent");
        assert!(label.starts_with("Revoke consent c-1 to Hospital A"), "{label}");
        let row = eval(
            &tab,
            "(() => { const r = document.querySelector('tr.access-row[data-index=\"0\"]'); return r.getAttribute('data-actor') + '|' + r.getAttribute('data-record-id') + '|' + r.textContent })()",
        );
        assert!(row.starts_with("hospital-a|obs-live|"), "{row}");
        assert!(row.contains("verified") && !row.contains("NOT verified"), "{row}");
        // The banner reflects the worst row: everything verified here.
        assert_eq!(
            eval(&tab, "document.querySelector('#verdict')?.getAttribute('data-verdict')"),
            "ok"
        );
        // Filters narrow the table, never the banner: no emergency access here, so none shown,
        // and the verdict still counts every row.
        eval(
            &tab,
            "(() => { const b = document.querySelector('#filter-break-glass'); b.checked = true; b.dispatchEvent(new Event('change')); return 'ok' })()",
        );
        assert_eq!(
            eval(&tab, "(() => { const c = document.querySelector('#history-count'); return c.dataset.shown + '/' + c.dataset.total + '|' + document.querySelectorAll('tr.access-row:not([hidden])').length })()"),
            "0/2|0"
        );
        assert_eq!(
            eval(&tab, "document.querySelector('#verdict')?.getAttribute('data-verdict')"),
            "ok"
        );
        assert_accessible(&tab, "patient page, history filtered");
        click(&tab, "#filter-clear");
        assert_eq!(
            eval(&tab, "document.querySelectorAll('tr.access-row:not([hidden])').length"),
            "2"
        );
        // "Download for health apps": a FHIR Bundle of the verified rows, built in the browser,
        // that HL7's validator accepts.
        eval(
            &tab,
            "(() => { const make = URL.createObjectURL.bind(URL); URL.createObjectURL = (b) => { b.text().then((t) => { window.__download = t; }); return make(b); }; return 'ok' })()",
        );
        click(&tab, "#download-fhir");
        let bundle = wait_for(
            &tab,
            "the FHIR download",
            "window.__download",
            Duration::from_secs(10),
        );
        let bundle: serde_json::Value = serde_json::from_str(&bundle).unwrap();
        let entries = bundle["entry"].as_array().expect("entries");
        assert_eq!(entries.len(), 2, "{bundle}");
        assert!(
            entries.iter().all(|e| e["fullUrl"].as_str().is_some_and(|u| u.starts_with("urn:uuid:"))
                && e["resource"]["resourceType"] == "AuditEvent"),
            "{bundle}"
        );
        crate::hapi::assert_valid(&[("the patient page's FHIR download".into(), bundle)]);
        // The patient revokes with a click (and confirms); the page says so once the ledger
        // proves it.
        let asked = click_and_confirm(&tab, "tr.consent-row button.revoke");
        assert!(asked.starts_with("Revoke consent c-1"), "the revoke asked for confirmation: {asked}");
        wait_for(
            &tab,
            "the revoked consent",
            "document.querySelector('tr.consent-row[data-consent-id=\"c-1\"]')?.getAttribute('data-status') === 'revoked'",
            Duration::from_secs(60),
        );
        wait_for(
            &tab,
            "the revoke's status: committed and verified",
            "document.querySelector('#status')?.textContent.includes('and verified at certified height')",
            Duration::from_secs(60),
        );
        // Another key: nothing of alice's stays on screen, not even for a moment.
        paste_key(&tab, &bob_json);
        // (The page may already show bob's id and his own verdict: it derives the id from the
        // key at once. What it must never show is alice's id, rows or buttons.)
        let first = eval(&tab, "document.querySelectorAll('tr.access-row, tr.consent-row, button.revoke').length + '|' + document.querySelector('#patient-id').textContent");
        assert!(
            first == "0|" || first == format!("0|{b_id}"),
            "right after another key opens, the page shows {first:?}, not bob's id {b_id} nor nothing"
        );
        let shown = wait_for(
            &tab,
            "bob's patient id",
            "document.querySelector('#verdict')?.getAttribute('data-verdict') && document.querySelector('#patient-id').textContent",
            Duration::from_secs(30),
        );
        assert_eq!(shown, b_id);
        assert_eq!(eval(&tab, "document.querySelectorAll('tr.access-row, tr.consent-row').length"), "0");
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

    // The auditor page opens hospital-a's admin key file (the localnet's keyring) and verifies
    // alice's complete history; the CSV export is fetched with the token.
    let admin_file =
        std::fs::read_to_string(net.home().join("keys").join("hospital-a.json")).unwrap();
    let (g, p) = (gateway.clone(), pid.clone());
    let browser = tokio::task::spawn_blocking(move || {
        let tab = browser.new_tab().unwrap();
        tab.navigate_to(&format!("{g}/auditor?kind=patient&id={p}"))
            .unwrap();
        tab.wait_until_navigated().unwrap();
        paste_key(&tab, &admin_file);
        let who = wait_for(
            &tab,
            "the auditor's sign-in",
            "document.querySelector('#subject')?.textContent",
            Duration::from_secs(30),
        );
        assert!(who.starts_with("member hospital-a"), "{who}");
        assert_accessible(&tab, "auditor page, signed in");
        let verified = wait_for(
            &tab,
            "the patient, verified",
            "document.querySelector('#result')?.getAttribute('data-verified')",
            Duration::from_secs(60),
        );
        assert_eq!(verified, "yes", "{}", status(&tab));
        assert_eq!(eval(&tab, ROW_VERIFIED), "yes");
        assert_accessible(&tab, "auditor page, a patient verified");
        screenshot(&tab, "auditor-page.png", "#result");
        click(&tab, "#download-csv");
        wait_for(
            &tab,
            "the CSV export, fetched with the token",
            "document.querySelector('#status')?.textContent.includes('Saved access-')",
            Duration::from_secs(30),
        );
        drop(tab);
        browser
    })
    .await
    .unwrap();

    // A second consent to revoke through the dropping gateway below.
    let r = c.submit(&alice, support::grant("lab-b")).await.unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);
    let dropped = r.attribute("consent_id").unwrap().to_string();

    // The same page behind a gateway that alters the access event's bytes: NOT verified, in red.
    // It also answers broadcasts "OK" without forwarding them: the revoke is NOT confirmed.
    let (proxy, switches) = tampering_proxy(gateway).await;
    let (p, d, k) = (pid.clone(), dropped.clone(), key_json.clone());
    let browser = tokio::task::spawn_blocking(move || {
        let tab = browser.new_tab().unwrap();
        open_patient(&tab, &proxy, &k, &p);
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
        // Why, in plain sight (no tooltip).
        let why = eval(&tab, "document.querySelector('tr.access-row[data-index=\"0\"] .why')?.innerText");
        assert!(why.contains("does not match the ledger"), "{why}");
        assert_accessible(&tab, "patient page, an altered row");

        // The dropped revoke: the gateway said OK, the proven state still shows it active.
        let button = format!("tr.consent-row[data-consent-id=\"{d}\"] button.revoke");
        wait_for(
            &tab,
            "the second consent's revoke button",
            &format!("!!document.querySelector('{}')", button.replace('\'', "\\'")),
            Duration::from_secs(30),
        );
        // The tampered row makes the banner red, never "every access … verified".
        let v = eval(&tab, "(() => { const v = document.querySelector('#verdict'); return v.getAttribute('data-verdict') + '|' + v.textContent })()");
        assert!(v.starts_with("error|") && !v.contains("every access to your data, verified"), "{v}");
        let asked = click_and_confirm(&tab, &button);
        assert!(asked.starts_with(&format!("Revoke consent {d}")), "{asked}");
        wait_for(
            &tab,
            "the dropped revoke, not confirmed",
            "document.querySelector('#status')?.textContent.includes('NOT confirmed by the ledger')",
            Duration::from_secs(90),
        );
        let s = status(&tab);
        assert!(s.starts_with("status warn|"), "{s}");
        assert!(!s.contains("and verified at certified height"), "{s}");
        let shown = eval(
            &tab,
            &format!(
                "document.querySelector('tr.consent-row[data-consent-id=\"{d}\"]')?.getAttribute('data-status')"
            ),
        );
        assert_eq!(shown, "active", "the page still shows the proven state");
        assert_accessible(&tab, "patient page, a revoke not confirmed");

        // The gateway goes down: an outage, said as one, and the page recovers by itself.
        switches.down.store(true, Ordering::SeqCst);
        wait_for(
            &tab,
            "the outage",
            "document.querySelector('#live')?.textContent === 'offline' && document.querySelector('#status').textContent.includes('cannot be reached')",
            Duration::from_secs(60),
        );
        assert_accessible(&tab, "patient page, the gateway down");
        switches.down.store(false, Ordering::SeqCst);
        wait_for(
            &tab,
            "live again, without a reload",
            "document.querySelector('#live')?.textContent === 'live'",
            Duration::from_secs(90),
        );

        // The same gateway later serves another consortium (pinned on this origin's first use
        // above): member ids swapped, or one validator given more than 2/3 of the power. The
        // page stops, red, each time.
        for mode in [SWAP_MEMBER_IDS, RAISE_POWER] {
            switches.genesis.store(mode, Ordering::SeqCst);
            tab.navigate_to(&format!("{proxy}/patient")).unwrap();
            tab.wait_until_navigated().unwrap();
            wait_for(
                &tab,
                "the changed consortium stops the page",
                "(() => { const w = document.querySelector('#trust-warning'); return !!w && !w.hidden && w.textContent.includes('different consortium') })()",
                Duration::from_secs(30),
            );
            assert_accessible(&tab, "patient page, the consortium changed");
        }
        switches.genesis.store(0, Ordering::SeqCst);
        drop(tab);
        browser
    })
    .await
    .unwrap();

    // The trust root is pinned on first use (this browser opened the real gateway above): a
    // different consortium later stops the page, red, with no rows, until accepted explicitly.
    // And a certified height older than one this browser has seen is an error, never verified.
    let (g, k, p) = (
        net.net.spec.nodes[0].gateway_url(),
        key_json.clone(),
        pid.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let tab = browser.new_tab().unwrap();
        tab.navigate_to(&format!("{g}/patient")).unwrap();
        tab.wait_until_navigated().unwrap();
        let pinned = wait_for(
            &tab,
            "the pinned consortium",
            "localStorage.getItem('medledger/consortium')",
            Duration::from_secs(30),
        );
        assert!(pinned.contains("fingerprint"), "{pinned}");
        eval(
            &tab,
            "(() => { const p = JSON.parse(localStorage.getItem('medledger/consortium')); p.fingerprint = '00'.repeat(32); localStorage.setItem('medledger/consortium', JSON.stringify(p)); return 'ok' })()",
        );
        tab.navigate_to(&format!("{g}/patient")).unwrap();
        tab.wait_until_navigated().unwrap();
        wait_for(
            &tab,
            "the red warning of a changed consortium",
            "(() => { const w = document.querySelector('#trust-warning'); return !!w && !w.hidden && w.textContent.includes('different consortium') })()",
            Duration::from_secs(30),
        );
        paste_key(&tab, &k);
        assert_eq!(eval(&tab, "document.querySelectorAll('tr.access-row, tr.consent-row').length"), "0");
        assert_eq!(eval(&tab, "document.querySelector('#patient-id').textContent"), "");
        let color = eval(&tab, "getComputedStyle(document.querySelector('#trust-warning')).color");
        assert!(color.starts_with("rgb(176, 0, 32"), "the warning is red: {color}");
        click(&tab, "#trust-accept");
        let shown = wait_for(
            &tab,
            "the patient, once the new consortium is accepted",
            "document.querySelector('#patient-id')?.textContent",
            Duration::from_secs(30),
        );
        assert_eq!(shown, p);

        // Rollback: this browser "saw" a far newer certified height for this consortium.
        eval(
            &tab,
            "(() => { const p = JSON.parse(localStorage.getItem('medledger/consortium')); localStorage.setItem('medledger/seen-height/' + p.chainId + '/' + p.fingerprint, '999999999'); return 'ok' })()",
        );
        tab.navigate_to(&format!("{g}/patient")).unwrap();
        tab.wait_until_navigated().unwrap();
        paste_key(&tab, &k);
        let v = wait_for(
            &tab,
            "the rollback error",
            "document.querySelector('#verdict')?.getAttribute('data-verdict') === 'rollback' && document.querySelector('#status').textContent",
            Duration::from_secs(30),
        );
        assert!(v.contains("older state than you have seen before: height ") && v.contains(" < 999999999"), "{v}");
        assert!(status(&tab).starts_with("status error|"), "{}", status(&tab));
        assert_eq!(eval(&tab, "document.querySelectorAll('tr[data-verified=\"yes\"]').length"), "0");
        assert_accessible(&tab, "patient page, a rollback");
    })
    .await
    .unwrap();
    // The ledger never saw it: the consent is still active.
    let (v, _) = c
        .query_raw(&medledger_tx::keys::consent(&dropped), 0)
        .await
        .unwrap();
    let consent = <pb::Consent as prost::Message>::decode(v.unwrap().as_slice()).unwrap();
    assert_eq!(
        consent.revoked_height, 0,
        "the dropped revoke never reached the ledger"
    );
}
