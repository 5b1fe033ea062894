//! SMART Backend Services at a member's gateway, on a localnet: hospital-a's admin registers an
//! ES384 client and an RS384 client on chain with `medledger tx smart register` (public JWKs
//! that Node's crypto made); each gets a token by the client credentials grant with a
//! `private_key_jwt` assertion; a replayed, expired, wrong-audience, foreign-key, unknown,
//! revoked or out-of-scope assertion is refused with its RFC 6749 error; a token limited to
//! `system/Consent.read` reads Consent but is refused a Claim (403 `security`) and every
//! non-FHIR route; `/.well-known/smart-configuration`, the CapabilityStatement's security and
//! CORS say so; an off-the-shelf client (`fhir-kit-client`) reads the capability, searches
//! with `_count`, follows `next` and reads; and the signed-request token still works beside it.

use std::path::{Path, PathBuf};

use medledger_gateway::client::GatewayClient;
use serde_json::{json, Value};

use crate::support::{self, TestNet};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `node web/tools/smart-client.mjs ARGS`: its one JSON line (it must succeed).
fn script(args: &[&str]) -> Value {
    let out = std::process::Command::new("node")
        .arg(repo_root().join("web/tools/smart-client.mjs"))
        .args(args)
        .current_dir(repo_root().join("web"))
        .output()
        .expect("node runs (scripts/deps.sh installs it, and `npm ci` in web/)");
    assert!(
        out.status.success(),
        "smart-client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A new key pair: the private JWK in `dir/name.json`, the public one in `dir/name.pub.json`.
fn keygen(dir: &Path, name: &str, alg: &str, kid: &str) -> PathBuf {
    let private = dir.join(format!("{name}.json"));
    let public = script(&["keygen", alg, kid, private.to_str().unwrap()]);
    assert!(
        public.get("d").is_none(),
        "the public JWK holds no private part"
    );
    let path = dir.join(format!("{name}.pub.json"));
    std::fs::write(&path, public.to_string()).unwrap();
    private
}

fn assertion(key: &Path, client: &str, aud: &str, exp_in: i64, jti: &str) -> String {
    script(&[
        "assertion",
        key.to_str().unwrap(),
        client,
        aud,
        &exp_in.to_string(),
        jti,
    ])["assertion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `medledger tx --from hospital-a smart ARGS` through node 0; the tx must commit.
fn smart_tx(net: &TestNet, args: &[&str]) {
    net.tx_ok("hospital-a", &[&["smart"], args].concat());
}

/// `POST /auth/token` with a form: the status and the JSON answer.
async fn token_request(http: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http
        .post(format!("{base}/auth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()["cache-control"],
        "no-store",
        "token answers are not cached"
    );
    (status, r.json().await.unwrap())
}

async fn grant_with(http: &reqwest::Client, base: &str, jwt: &str, scope: &str) -> (u16, Value) {
    token_request(
        http,
        base,
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
            ("scope", scope),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_backend_clients_get_scoped_tokens_and_a_fhir_client_reads_with_one() {
    let net = TestNet::start_with_gateways().await;
    let base = net.net.spec.nodes[0].gateway_url();
    let aud = format!("{base}/auth/token");
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();

    // A patient with three consents to hospital-a (for paging one at a time).
    let patient = net.consenting_patient(61, "hospital-a").await;
    for _ in 0..2 {
        let r = net
            .client(0)
            .submit(&patient.key, support::grant("hospital-a"))
            .await
            .unwrap();
        assert_eq!(r.code, 0, "{}", r.log);
    }

    // Keys made by Node's crypto; the public JWKs registered with the CLI.
    let es = keygen(dir.path(), "es", "ES384", "es-1");
    let rs = keygen(dir.path(), "rs", "RS384", "rs-1");
    let stranger = keygen(dir.path(), "stranger", "ES384", "es-1");
    let old = keygen(dir.path(), "old", "ES384", "old-1");
    let public = |name: &str| dir.path().join(format!("{name}.pub.json"));
    let es_pub = public("es");
    let rs_pub = public("rs");
    let old_pub = public("old");
    smart_tx(
        &net,
        &[
            "register",
            "--client-id",
            "ehr-es",
            "--jwk",
            es_pub.to_str().unwrap(),
            "--scope",
            "system/Consent.read",
        ],
    );
    smart_tx(
        &net,
        &[
            "register",
            "--client-id",
            "ehr-rs",
            "--jwk",
            rs_pub.to_str().unwrap(),
            "--scope",
            "system/*.read",
            "--scope",
            "system/Claim.write",
        ],
    );
    smart_tx(
        &net,
        &[
            "register",
            "--client-id",
            "ehr-old",
            "--jwk",
            old_pub.to_str().unwrap(),
            "--scope",
            "system/Consent.read",
        ],
    );
    smart_tx(&net, &["revoke", "--client-id", "ehr-old"]);
    // A client granted Patient alone: `Patient/$everything` would hand it Consents, AuditEvents
    // and DocumentReferences, so it is refused.
    let pt = keygen(dir.path(), "pt", "ES384", "pt-1");
    let pt_pub = public("pt");
    smart_tx(
        &net,
        &[
            "register",
            "--client-id",
            "ehr-pt",
            "--jwk",
            pt_pub.to_str().unwrap(),
            "--scope",
            "system/Patient.read",
        ],
    );

    // The ES384 client: a token for what it asked within what is registered.
    let jwt = assertion(&es, "ehr-es", &aud, 240, "jti-es-1");
    let (s, a) = grant_with(&http, &base, &jwt, "system/Consent.read").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["token_type"], "bearer");
    assert_eq!(a["scope"], "system/Consent.rs");
    assert!(a["expires_in"].as_u64().unwrap() <= 300);
    let es_token = a["access_token"].as_str().unwrap().to_string();
    // The same assertion again: its jti is spent.
    let (s, e) = grant_with(&http, &base, &jwt, "system/Consent.read").await;
    assert_eq!(
        (s, e["error"].as_str()),
        (401, Some("invalid_client")),
        "{e}"
    );

    // The RS384 client: read everything, write claims; it asks for less.
    let jwt = assertion(&rs, "ehr-rs", &aud, 240, "jti-rs-1");
    let (s, a) = grant_with(&http, &base, &jwt, "system/Consent.read system/Claim.write").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["scope"], "system/Consent.rs system/Claim.cud");

    // Each bad assertion is refused before a token exists.
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "expired",
            assertion(&es, "ehr-es", &aud, -10, "jti-x1"),
            "system/Consent.read",
            401,
            "invalid_client",
        ),
        (
            "too long-lived",
            assertion(&es, "ehr-es", &aud, 900, "jti-x2"),
            "system/Consent.read",
            401,
            "invalid_client",
        ),
        (
            "wrong aud",
            assertion(&es, "ehr-es", "http://elsewhere/auth/token", 240, "jti-x3"),
            "system/Consent.read",
            401,
            "invalid_client",
        ),
        (
            "another key",
            assertion(&stranger, "ehr-es", &aud, 240, "jti-x4"),
            "system/Consent.read",
            401,
            "invalid_client",
        ),
        (
            "RS384 key named as ES384 client",
            assertion(&rs, "ehr-es", &aud, 240, "jti-x5"),
            "system/Consent.read",
            401,
            "invalid_client",
        ),
        (
            "unknown client",
            assertion(&es, "ehr-nobody", &aud, 240, "jti-x6"),
            "system/Consent.read",
            401,
            "invalid_client",
        ),
        (
            "revoked client",
            assertion(&old, "ehr-old", &aud, 240, "jti-x7"),
            "system/Consent.read",
            401,
            "invalid_client",
        ),
        (
            "scope not registered",
            assertion(&es, "ehr-es", &aud, 240, "jti-x8"),
            "system/Claim.write",
            400,
            "invalid_scope",
        ),
        (
            "not a scope",
            assertion(&es, "ehr-es", &aud, 240, "jti-x9"),
            "patient/*.read",
            400,
            "invalid_scope",
        ),
        (
            "not a JWT",
            "eyJ.garbage".to_string(),
            "system/Consent.read",
            401,
            "invalid_client",
        ),
    ];
    for (what, jwt, scope, status, error) in &cases {
        let (s, e) = grant_with(&http, &base, jwt, scope).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (*status, Some(*error)),
            "{what}: {e}"
        );
        assert!(
            e["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{what}"
        );
    }
    let (s, e) = token_request(
        &http,
        &base,
        &[("grant_type", "password"), ("username", "x")],
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("unsupported_grant_type")),
        "{e}"
    );
    let (s, e) = token_request(&http, &base, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
    let huge = "a".repeat(20_000);
    let r = http
        .post(&aud)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion", &huge),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        413,
        "a form is bounded before it is read"
    );

    // The Consent.read token reads consents, and nothing else.
    let pid = &patient.id;
    let r = http
        .get(format!("{base}/fhir/Consent?patient={pid}"))
        .bearer_auth(&es_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["total"], 3, "{b}");
    let r = http
        .post(format!("{base}/fhir/Claim"))
        .bearer_auth(&es_token)
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Claim"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["code"], "security", "{oo}");
    let r = http
        .get(format!("{base}/fhir/AuditEvent?patient={pid}"))
        .bearer_auth(&es_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "AuditEvent is not in its scopes");
    let jwt = assertion(&pt, "ehr-pt", &aud, 240, "jti-pt-1");
    let (s, a) = grant_with(&http, &base, &jwt, "system/Patient.read").await;
    assert_eq!(s, 200, "{a}");
    let pt_token = a["access_token"].as_str().unwrap().to_string();
    let r = http
        .get(format!("{base}/fhir/Patient/{pid}/$everything"))
        .bearer_auth(&pt_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        403,
        "Patient.read alone is not everything"
    );
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["issue"][0]["code"], "security", "{oo}");
    let said = oo["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        said.contains("system/Consent.s") && said.contains("system/AuditEvent.s"),
        "{said}"
    );
    let r = http
        .get(format!("{base}/live?patient={pid}"))
        .bearer_auth(&es_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a SMART token is for /fhir only");

    // Discovery: the configuration, the CapabilityStatement, CORS.
    let r = http
        .get(format!("{base}/.well-known/smart-configuration"))
        .header("origin", "https://ehr.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["token_endpoint"], aud.as_str());
    assert_eq!(
        c["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );
    assert_eq!(
        c["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES384", "RS384"])
    );
    assert_eq!(c["grant_types_supported"], json!(["client_credentials"]));
    assert!(c["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("client-confidential-asymmetric")));
    assert!(c["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("system/Consent.read")));
    let r = http
        .request(reqwest::Method::OPTIONS, &aud)
        .header("origin", "https://ehr.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let cap: Value = http
        .get(format!("{base}/fhir/metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let security = &cap["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    // The endpoints are in the SMART configuration (its `oauth-uris` extension would need an
    // `authorize` endpoint, which backend services have none of).
    assert!(security.get("extension").is_none(), "{security}");

    // An off-the-shelf FHIR client with the token: capability, search, the next page, a read.
    let out = script(&["fhir", &base, &es_token, pid]);
    assert_eq!(
        out["capability"]["resourceType"], "CapabilityStatement",
        "{out}"
    );
    assert_eq!(out["capability"]["security"], "SMART-on-FHIR");
    assert_eq!(out["first"]["total"], 3, "{out}");
    let first = out["first"]["ids"].as_array().unwrap();
    let next = out["next"]["ids"].as_array().unwrap();
    assert_eq!((first.len(), next.len()), (1, 1), "{out}");
    assert_ne!(first[0], next[0], "the next page is the next consent");
    assert_eq!(out["read"]["resourceType"], "Consent");
    assert_eq!(out["read"]["id"], first[0]);

    // RFC 9421 beside it: a signed request still gets its own token.
    let hospital = net.member_key("hospital-a");
    let token = GatewayClient::new(&base, hospital).token().await.unwrap();
    let r = http
        .get(format!("{base}/fhir/AuditEvent?patient={pid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "the member's own token reads AuditEvents"
    );
}
