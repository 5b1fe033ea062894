//! SMART backend clients on chain: RegisterSmartClient / RevokeSmartClient, stored under the
//! proven key `smart-client/{client id}`. Only a member's admin registers; a client acts for
//! the member or one of its own practitioners; keys and scopes are checked; ids are never reused.

#![allow(clippy::unwrap_used)]

use medledger_tx::pb::{self, tx_body::Msg, PractitionerRole, SmartClient, SmartKeyAlg};
use medledger_tx::{keys, Code};

use crate::common::*;

const HOSPITAL: usize = 0;
const LAB: usize = 1;

/// The P-384 generator, uncompressed: a valid point.
const P384_G: &str = "04aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab73617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f";

fn es384(client_id: &str, acts_for: &str, scopes: &[&str]) -> pb::RegisterSmartClient {
    pb::RegisterSmartClient {
        client_id: client_id.into(),
        kid: "key-1".into(),
        alg: SmartKeyAlg::Es384 as i32,
        ec_point: hex::decode(P384_G).unwrap(),
        rsa_n: vec![],
        rsa_e: vec![],
        acts_for_practitioner: acts_for.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

fn rs384(client_id: &str) -> pb::RegisterSmartClient {
    let mut n = vec![0xc5u8; 256];
    n[255] |= 1;
    pb::RegisterSmartClient {
        alg: SmartKeyAlg::Rs384 as i32,
        ec_point: vec![],
        rsa_n: n,
        rsa_e: vec![1, 0, 1],
        ..es384(client_id, "", &["system/*.read"])
    }
}

fn reg(m: pb::RegisterSmartClient) -> Msg {
    Msg::RegisterSmartClient(m)
}

fn revoke(id: &str) -> Msg {
    Msg::RevokeSmartClient(pb::RevokeSmartClient {
        client_id: id.into(),
    })
}

#[test]
fn a_member_admin_registers_replaces_and_revokes_a_client() {
    let mut c = Chain::new();
    let events = c.ok(
        &admin(HOSPITAL),
        reg(es384(
            "ehr-1",
            "",
            &["system/Consent.read", "system/Claim.cud"],
        )),
    );
    assert!(events
        .iter()
        .any(|e| e.kind == "medledger.smart_client.registered"));
    let s: SmartClient = c.get(&keys::smart_client("ehr-1")).unwrap();
    assert_eq!(s.member_id, "hospital-a");
    assert_eq!(s.alg, SmartKeyAlg::Es384 as i32);
    assert_eq!(s.ec_point, hex::decode(P384_G).unwrap());
    assert_eq!(s.scopes, vec!["system/Consent.read", "system/Claim.cud"]);
    assert_eq!(s.revoked_height, 0);
    // Its member replaces it (a new key, new scopes).
    c.ok(&admin(HOSPITAL), reg(rs384("ehr-1")));
    let s: SmartClient = c.get(&keys::smart_client("ehr-1")).unwrap();
    assert_eq!(s.alg, SmartKeyAlg::Rs384 as i32);
    assert_eq!(s.rsa_e, vec![1, 0, 1]);
    assert!(s.ec_point.is_empty());
    assert_eq!(s.scopes, vec!["system/*.read"]);
    // Another member may neither take the id nor revoke the client.
    assert_eq!(
        c.send(&admin(LAB), reg(rs384("ehr-1"))),
        Code::SmartClientIdTaken.value()
    );
    assert_eq!(
        c.send(&admin(LAB), revoke("ehr-1")),
        Code::NotAuthorized.value()
    );
    c.ok(&admin(HOSPITAL), revoke("ehr-1"));
    let s: SmartClient = c.get(&keys::smart_client("ehr-1")).unwrap();
    assert_eq!(s.revoked_height, c.height - 1);
    // Revoked is final: no second revoke, and the id is never registered again.
    assert_eq!(
        c.send(&admin(HOSPITAL), revoke("ehr-1")),
        Code::UnknownSmartClient.value()
    );
    assert_eq!(
        c.send(&admin(HOSPITAL), reg(rs384("ehr-1"))),
        Code::SmartClientIdTaken.value()
    );
    assert_eq!(
        c.send(&admin(HOSPITAL), revoke("never-registered")),
        Code::UnknownSmartClient.value()
    );
}

#[test]
fn only_a_member_admin_registers_a_client() {
    let mut c = Chain::new();
    let alice = key(1);
    c.enrol(&alice);
    assert_eq!(
        c.send(&alice, reg(es384("ehr-p", "", &["system/Consent.read"]))),
        Code::NotAuthorized.value()
    );
    let doc = key(2);
    c.ok(
        &admin(HOSPITAL),
        register_practitioner_for(HOSPITAL, &doc, PractitionerRole::Physician, 0),
    );
    assert_eq!(
        c.send(&doc, reg(es384("ehr-d", "", &["system/Consent.read"]))),
        Code::NotAuthorized.value()
    );
    assert_eq!(
        c.send(&key(3), reg(es384("ehr-u", "", &["system/Consent.read"]))),
        Code::UnknownSigner.value()
    );
    for id in ["ehr-p", "ehr-d", "ehr-u"] {
        assert!(c.get::<SmartClient>(&keys::smart_client(id)).is_none());
    }
}

#[test]
fn a_client_acts_only_for_a_practitioner_of_its_own_member() {
    let mut c = Chain::new();
    let doc = key(2);
    let lab_tech = key(3);
    c.ok(
        &admin(HOSPITAL),
        register_practitioner_for(HOSPITAL, &doc, PractitionerRole::Physician, 0),
    );
    c.ok(
        &admin(LAB),
        register_practitioner_for(LAB, &lab_tech, PractitionerRole::LabTechnician, 0),
    );
    c.ok(
        &admin(HOSPITAL),
        reg(es384("ehr-doc", &did(&doc), &["system/Consent.read"])),
    );
    let s: SmartClient = c.get(&keys::smart_client("ehr-doc")).unwrap();
    assert_eq!(s.acts_for_practitioner, did(&doc));
    // Another member's practitioner.
    assert_eq!(
        c.send(
            &admin(HOSPITAL),
            reg(es384("ehr-lab", &did(&lab_tech), &["system/Consent.read"]))
        ),
        Code::NotAuthorized.value()
    );
    // Nobody's.
    assert_eq!(
        c.send(
            &admin(HOSPITAL),
            reg(es384("ehr-x", &did(&key(9)), &["system/Consent.read"]))
        ),
        Code::UnknownPractitioner.value()
    );
}

#[test]
fn bad_keys_ids_and_scopes_are_refused_with_their_codes() {
    let mut c = Chain::new();
    let a = admin(HOSPITAL);
    let mut off_curve = es384("e1", "", &["system/Consent.read"]);
    off_curve.ec_point[96] ^= 1;
    let mut short_rsa = rs384("e2");
    short_rsa.rsa_n.truncate(255);
    let mut no_alg = es384("e3", "", &["system/Consent.read"]);
    no_alg.alg = 0;
    let mut both = rs384("e4");
    both.ec_point = hex::decode(P384_G).unwrap();
    let mut even_e = rs384("e5");
    even_e.rsa_e = vec![1, 0, 0];
    let many: Vec<String> = (0..=medledger_tx::limits::MAX_SMART_SCOPES)
        .map(|i| format!("system/R{i}.read"))
        .collect();
    let mut too_many = es384("e6", "", &[]);
    too_many.scopes = many;
    let long = format!("system/{}.read", "A".repeat(80));
    let mut no_kid = es384("e9", "", &["system/Consent.read"]);
    no_kid.kid = String::new();
    let cases = [
        (off_curve, Code::BadSmartKey),
        (short_rsa, Code::BadSmartKey),
        (no_alg, Code::BadSmartKey),
        (both, Code::BadSmartKey),
        (even_e, Code::BadSmartKey),
        (too_many, Code::TooManyItems),
        (es384("e7", "", &[&long]), Code::FieldTooLong),
        (
            es384("e8", "", &["patient/Consent.read"]),
            Code::BadSmartScope,
        ),
        (
            es384("e8", "", &["system/Consent.read", "system/Consent.read"]),
            Code::BadSmartScope,
        ),
        (es384("e8", "", &["system/Consent.sr"]), Code::BadSmartScope),
        (es384("e8", "", &[]), Code::BadSmartScope),
        (
            es384("a/b", "", &["system/Consent.read"]),
            Code::InvalidField,
        ),
        (
            es384("a*", "", &["system/Consent.read"]),
            Code::InvalidField,
        ),
        (
            es384(&"x".repeat(65), "", &["system/Consent.read"]),
            Code::FieldTooLong,
        ),
        (no_kid, Code::InvalidField),
    ];
    for (m, code) in cases {
        let id = m.client_id.clone();
        assert_eq!(c.send(&a, reg(m)), code.value(), "{id}");
    }
    for id in ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"] {
        assert!(c.get::<SmartClient>(&keys::smart_client(id)).is_none());
    }
}
