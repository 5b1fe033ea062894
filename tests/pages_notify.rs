//! Notifications on the patient page (issue 27, point 10), in a real browser (headless chromium)
//! on a localnet whose nodes run their gateways. The notifications permission is granted over
//! the DevTools protocol (`Browser.grantPermissions`) and an init script wraps the real
//! `window.Notification` constructor, recording each (title, body) before calling it.
//!
//! The patient turns browser notifications on: the access already in the history when the key
//! was opened notifies nothing; a physician's read through the CLI (`tx access log`) notifies
//! once, naming the physician, their role and member, the record type and the purpose in words;
//! a break-glass says emergency access. The patient then sends alerts to an address (a real
//! HTTP receiver, tests/support/hooks.rs): the page creates a FHIR Subscription at its gateway
//! with the patient's session, lists it "Active", and the next access reaches the receiver as a
//! notification whose proofs verify against a checkpoint certificate. The gateway refuses the
//! patient a subscription on another patient (403, OperationOutcome `forbidden`), lists a
//! subscriber's own only and refuses another's DELETE (403). After "Stop" (confirmed), the next
//! access reaches the page but not the receiver. With the browser's permission then set to
//! denied (`Browser.setPermission`), the reloaded page says so in words (the patient's choice is
//! remembered) and lists the next access without making a notification. axe-core finds no
//! violation in each state.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use ed25519_dalek::SigningKey;
use headless_chrome::protocol::cdp::{Browser as CdpBrowser, Page};
use medledger_gateway::client::GatewayClient;
use medledger_tx::pb::PractitionerRole;
use serde_json::{json, Value};

use crate::pages::{
    assert_accessible, browser, click, click_and_confirm, eval, open_patient, screenshot, wait_for,
};
use crate::subscriptions::verified_notification;
use crate::support::hooks::{next_hook, receiver};
use crate::support::{self, TestNet};

/// Wraps the real `Notification` constructor: each call is recorded in `window.__notified`
/// (title, body, tag) and then made for real.
const RECORD_NOTIFICATIONS: &str = r#"(() => {
  window.__notified = [];
  const Real = window.Notification;
  if (!Real) return;
  class Recorded extends Real {
    constructor(title, options) {
      window.__notified.push({ title: String(title), body: String(options?.body ?? ''), tag: String(options?.tag ?? '') });
      super(title, options);
    }
  }
  Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
  Recorded.requestPermission = (...a) => Real.requestPermission(...a);
  window.Notification = Recorded;
})()"#;

/// How many notifications the page made.
const COUNT: &str = "String((window.__notified || []).length)";

/// A read of the patient's lab result `obs-nt` by `from`, logged through the CLI.
fn read_lab_result(net: &TestNet, from: &str, patient: &str) {
    net.tx_ok(
        from,
        &[
            "access",
            "log",
            "--patient",
            patient,
            "--record",
            "obs-nt",
            "--class",
            "Observation",
            "--purpose",
            "TREAT",
        ],
    );
}

/// The `n`th notification made (0-based): `title|body`, once there are more than `n`.
fn notified(n: usize) -> String {
    format!("(() => {{ const x = (window.__notified || [])[{n}]; return x ? `${{x.title}}|${{x.body}}` : '' }})()")
}

/// A signed request (RFC 9421) by `key` to `gateway`: its status and JSON body.
async fn signed(
    gateway: &str,
    key: &SigningKey,
    method: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let (status, answer) = GatewayClient::new(gateway, key.clone())
        .send_raw(
            method,
            path,
            bytes,
            &[("content-type".into(), "application/fhir+json".into())],
        )
        .await
        .unwrap();
    let v = serde_json::from_slice(&answer).unwrap_or_else(|_| {
        panic!(
            "{method} {path} -> {status}: {}",
            String::from_utf8_lossy(&answer)
        )
    });
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_verified_accesses_notify_in_the_browser_and_at_an_address_until_stopped() {
    let net = TestNet::start_with_gateways().await;
    let gateway = net.net.spec.nodes[0].gateway_url();
    // alice's lab result is kept by hospital-a; she consents to hospital-a (Observations,
    // treatment); Dr Ana Silva is a physician of hospital-a.
    let alice = net.patient_with_record(141, "obs-nt").await;
    let pid = alice.id.clone();
    let r = net
        .client(0)
        .submit(&alice.key, support::grant("hospital-a"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "consent: {} {}", r.code_name, r.log);
    let doctor = SigningKey::from_bytes(&[142; 32]);
    net.register_practitioner(
        "hospital-a",
        &doctor,
        "Dr Ana Silva",
        PractitionerRole::Physician,
    )
    .await;
    net.keyring.import("doctor", &doctor).unwrap();
    // bob, another patient of hospital-a.
    let bob = SigningKey::from_bytes(&[143; 32]);
    net.enrol_patient(0, &bob).await;
    let bob_id = medledger_tx::ids::patient_id(&bob.verifying_key().to_bytes());
    // One access before the page is opened: it is history, never a notification.
    read_lab_result(&net, "hospital-a", &pid);

    let (g, p, key_json) = (gateway.clone(), pid.clone(), alice.key_file_json("alice"));
    let (browser, tab) = tokio::task::spawn_blocking(move || {
        let browser = browser();
        let tab = browser.new_tab().unwrap();
        tab.call_method(CdpBrowser::GrantPermissions {
            permissions: vec![CdpBrowser::PermissionType::Notifications],
            origin: Some(g.clone()),
            browser_context_id: None,
        })
        .unwrap();
        tab.call_method(Page::AddScriptToEvaluateOnNewDocument {
            source: RECORD_NOTIFICATIONS.into(),
            world_name: None,
            include_command_line_api: None,
            run_immediately: None,
        })
        .unwrap();
        open_patient(&tab, &g, &key_json, &p);
        wait_for(
            &tab,
            "the history (one access), verified",
            "document.querySelector('#verdict')?.getAttribute('data-verdict') === 'ok' && document.querySelectorAll('tr.access-row').length === 1",
            Duration::from_secs(60),
        );
        // Off by default, said in words; on with one click (the permission was granted).
        assert_eq!(eval(&tab, "document.querySelector('#notify-state').dataset.on"), "no");
        assert!(eval(&tab, "document.querySelector('#notify-state').textContent").starts_with("Off."));
        click(&tab, "#notify-on");
        let state = wait_for(
            &tab,
            "notifications on",
            "(() => { const s = document.querySelector('#notify-state'); return s.dataset.on === 'yes' && s.dataset.permission !== 'default' && `${s.dataset.permission}|${s.textContent}` })()",
            Duration::from_secs(10),
        );
        assert!(state.starts_with("granted|On: "), "{state}");
        assert!(!eval(&tab, "document.querySelector('#notify-off').hidden").contains("true"));
        // The access there at load notified nothing.
        assert_eq!(eval(&tab, COUNT), "0");
        assert_eq!(eval(&tab, "String(document.querySelectorAll('#notify-list li').length)"), "0");
        assert_accessible(&tab, "patient page, notifications on, nothing new");
        (browser, tab)
    })
    .await
    .unwrap();

    // The physician reads the lab result: one notification, in words.
    read_lab_result(&net, "doctor", &pid);
    let tab = tokio::task::spawn_blocking(move || {
        let first = wait_for(&tab, "the physician's read notified", &notified(0), Duration::from_secs(60));
        assert_eq!(
            first,
            "Someone accessed your data|Dr Ana Silva, doctor at Hospital A read your Lab result (Observation) (record obs-nt). Why: Treatment."
        );
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(eval(&tab, COUNT), "1", "notified once");
        let li = eval(&tab, "document.querySelector('#notify-list li').textContent");
        assert!(li.contains("Dr Ana Silva, doctor at Hospital A read your Lab result"), "{li}");
        tab
    })
    .await
    .unwrap();

    // The physician breaks the glass: the notification says emergency.
    net.tx_ok(
        "doctor",
        &[
            "access",
            "break-glass",
            "--patient",
            &pid,
            "--record",
            "obs-nt",
            "--class",
            "Observation",
            "--reason",
            "Unconscious on arrival",
        ],
    );
    let (hook_base, hooks) = receiver();
    let endpoint = format!("{hook_base}/alerts");
    let e = endpoint.clone();
    let (tab, sub_id) = tokio::task::spawn_blocking(move || {
        let bg = wait_for(&tab, "the break-glass notified", &notified(1), Duration::from_secs(60));
        assert!(bg.starts_with("Emergency access to your data|Emergency access without your consent: Dr Ana Silva, doctor at Hospital A read your Lab result (Observation)"), "{bg}");
        assert_eq!(eval(&tab, "document.querySelector('#notify-list li').dataset.emergency"), "yes");
        screenshot(&tab, "patient-notifications.png", "#notify-section");
        assert_accessible(&tab, "patient page, two notifications listed");

        // Alerts to an address: a Subscription at this gateway, listed as active.
        let set = format!(
            "(() => {{ document.querySelector('#endpoint-url').value = {}; return 'ok' }})()",
            Value::String(e.clone())
        );
        assert_eq!(eval(&tab, &set), "ok");
        click(&tab, "#endpoint-submit");
        let row = wait_for(
            &tab,
            "the address listed, active",
            "(() => { const tr = document.querySelector('#endpoints tr.endpoint-row'); return tr && !document.querySelector('#endpoints').hidden && `${tr.dataset.subscriptionId}|${tr.dataset.status}|${tr.innerText.replace(/\\s+/g, ' ')}` })()",
            Duration::from_secs(30),
        );
        let parts: Vec<&str> = row.splitn(3, '|').collect();
        assert_eq!(parts[1], "active", "{row}");
        assert!(parts[2].contains(&e) && parts[2].contains("Active: each new access is sent there"), "{row}");
        let summary = eval(&tab, "document.querySelector('#endpoint-summary').textContent");
        assert!(summary.contains("Alerts go to 1 address."), "{summary}");
        assert_accessible(&tab, "patient page, alerts sent to an address");
        (tab, parts[0].to_string())
    })
    .await
    .unwrap();

    // The gateway keeps it to the patient: none on another patient, only one's own listed,
    // another's DELETE refused.
    let (status, oo) = signed(
        &gateway,
        &alice.key,
        "POST",
        "/fhir/Subscription",
        &json!({
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "someone else's accesses",
            "criteria": format!("AuditEvent?patient={bob_id}"),
            "channel": { "type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json" },
        }),
    )
    .await;
    assert_eq!(status, 403, "{oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["code"], "forbidden", "{oo}");
    let (status, mine) = signed(
        &gateway,
        &alice.key,
        "GET",
        "/fhir/Subscription",
        &Value::Null,
    )
    .await;
    assert_eq!(
        (status, &mine["type"], &mine["total"]),
        (200, &json!("searchset"), &json!(1)),
        "{mine}"
    );
    assert_eq!(mine["entry"][0]["resource"]["id"], sub_id.as_str());
    assert_eq!(
        mine["entry"][0]["resource"]["criteria"],
        format!("AuditEvent?patient={pid}")
    );
    let (status, theirs) = signed(&gateway, &bob, "GET", "/fhir/Subscription", &Value::Null).await;
    assert_eq!((status, &theirs["total"]), (200, &json!(0)), "{theirs}");
    let path = format!("/fhir/Subscription/{sub_id}");
    let (status, oo) = signed(&gateway, &bob, "DELETE", &path, &Value::Null).await;
    assert_eq!(
        (status, &oo["issue"][0]["code"]),
        (403, &json!("forbidden")),
        "{oo}"
    );

    // The next access reaches the address, with its proof.
    let mut set_aside = Vec::new();
    read_lab_result(&net, "hospital-a", &pid);
    let hook = next_hook(&hooks, "/alerts", Duration::from_secs(60), &mut set_aside)
        .expect("a notification at the address");
    assert_eq!(hook.header("content-type"), Some("application/fhir+json"));
    let resources = verified_notification(&net, &hook.bundle(), &sub_id);
    assert!(!resources.is_empty(), "the notification carries the access");
    assert!(
        resources.iter().all(|r| r["resourceType"] == "AuditEvent"),
        "{resources:?}"
    );

    // Stop (confirmed): the gateway deletes it; the next access reaches the page, not the address.
    let e = endpoint.clone();
    let tab = tokio::task::spawn_blocking(move || {
        wait_for(&tab, "the third access notified", &notified(2), Duration::from_secs(60));
        let asked = click_and_confirm(&tab, &format!("#endpoints button[data-subscription-id='{sub_id}']"));
        assert!(asked.starts_with(&format!("Stop sending alerts to {e}?")), "{asked}");
        let summary = wait_for(
            &tab,
            "the address gone",
            "(() => { const s = document.querySelector('#endpoint-summary'); return s.dataset.count === '0' && document.querySelector('#endpoints').hidden && s.textContent })()",
            Duration::from_secs(30),
        );
        assert!(summary.contains("are stopped") && summary.contains("No alerts are sent to any address."), "{summary}");
        assert_accessible(&tab, "patient page, alerts stopped");
        tab
    })
    .await
    .unwrap();
    let (status, mine) = signed(
        &gateway,
        &alice.key,
        "GET",
        "/fhir/Subscription",
        &Value::Null,
    )
    .await;
    assert_eq!((status, &mine["total"]), (200, &json!(0)), "{mine}");
    read_lab_result(&net, "hospital-a", &pid);
    let (g, p, key_json) = (gateway.clone(), pid.clone(), alice.key_file_json("alice"));
    let tab = tokio::task::spawn_blocking(move || {
        wait_for(&tab, "the fourth access notified", &notified(3), Duration::from_secs(60));
        // The browser now refuses notifications to this page: said in words, not an error; the
        // choice made before is remembered for this patient.
        tab.call_method(CdpBrowser::SetPermission {
            permission: CdpBrowser::PermissionDescriptor {
                name: "notifications".into(),
                sysex: None,
                user_visible_only: None,
                allow_without_sanitization: None,
                allow_without_gesture: None,
                pan_tilt_zoom: None,
            },
            setting: CdpBrowser::PermissionSetting::Denied,
            origin: Some(g.clone()),
            embedding_origin: None,
            browser_context_id: None,
        })
        .unwrap();
        open_patient(&tab, &g, &key_json, &p);
        let state = wait_for(
            &tab,
            "notifications denied, in words",
            "(() => { const s = document.querySelector('#notify-state'); return s.dataset.on === 'yes' && s.dataset.permission === 'denied' && s.textContent })()",
            Duration::from_secs(60),
        );
        assert!(state.contains("set not to show notifications") && state.contains("still listed here"), "{state}");
        assert_eq!(eval(&tab, "String(document.querySelector('#notify-on').hidden)"), "true");
        assert_eq!(eval(&tab, "String(document.querySelector('#notify-off').hidden)"), "false");
        assert_accessible(&tab, "patient page, notifications denied by the browser");
        tab
    })
    .await
    .unwrap();
    // The page saw the fourth access (certified): a subscription still there would have posted.
    assert!(
        next_hook(&hooks, "/alerts", Duration::from_secs(10), &mut set_aside).is_none(),
        "nothing reaches the address after Stop"
    );
    // A new access with notifications denied: listed on the page, no notification made.
    read_lab_result(&net, "hospital-a", &pid);
    tokio::task::spawn_blocking(move || {
        let li = wait_for(
            &tab,
            "the fifth access listed on the page",
            "(() => { const li = document.querySelector('#notify-list li'); return li && li.textContent })()",
            Duration::from_secs(60),
        );
        assert!(li.starts_with("Someone accessed your data: Hospital A read your Lab result"), "{li}");
        assert_eq!(eval(&tab, COUNT), "0");
        assert_accessible(&tab, "patient page, notifications denied, one listed");
        drop(browser);
    })
    .await
    .unwrap();
}
