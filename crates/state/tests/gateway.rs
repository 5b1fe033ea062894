//! Record-vault gateways on chain: SetGateway (endpoint and X25519 box key signed by the member's
//! admin key), stored under the proven key `gateway/{member}`.

#![allow(clippy::unwrap_used)]

use medledger_tx::pb::{self, tx_body::Msg, Gateway};
use medledger_tx::{boxkey, keys, Code};

use crate::common::*;

const LAB: usize = 1;

fn set_gateway(member: usize, endpoint: &str, box_key: [u8; 32]) -> Msg {
    let sig = boxkey::sign(&admin(member), CHAIN, MEMBERS[member].0, &box_key);
    Msg::SetGateway(pb::SetGateway {
        endpoint: endpoint.into(),
        box_public_key: box_key.to_vec(),
        box_key_signature: sig.to_vec(),
    })
}

#[test]
fn a_member_admin_sets_and_replaces_its_gateway() {
    let mut c = Chain::new();
    c.ok(
        &admin(LAB),
        set_gateway(LAB, "https://vault.lab-b.example", [7; 32]),
    );
    let g: Gateway = c.get(&keys::gateway("lab-b")).unwrap();
    assert_eq!(g.member_id, "lab-b");
    assert_eq!(g.endpoint, "https://vault.lab-b.example");
    assert_eq!(g.box_public_key, vec![7; 32]);
    assert_eq!(g.admin_key, pk(&admin(LAB)).to_vec());
    assert_eq!(g.set_height, c.height - 1);
    // The statement verifies from state alone.
    let key: [u8; 32] = g.admin_key.as_slice().try_into().unwrap();
    boxkey::verify(&key, &g.box_key_signature, CHAIN, "lab-b", &[7; 32]).unwrap();
    // A new key replaces the old one.
    c.ok(
        &admin(LAB),
        set_gateway(LAB, "http://127.0.0.1:9000", [8; 32]),
    );
    let g: Gateway = c.get(&keys::gateway("lab-b")).unwrap();
    assert_eq!(g.box_public_key, vec![8; 32]);
    assert_eq!(g.endpoint, "http://127.0.0.1:9000");
    assert!(c.get::<Gateway>(&keys::gateway("hospital-a")).is_none());
}

#[test]
fn a_box_key_signed_for_another_member_chain_or_key_is_refused() {
    let mut c = Chain::new();
    // Signed by lab-b's admin for member hospital-a: sent by lab-b, the statement names lab-b.
    let wrong_member = boxkey::sign(&admin(LAB), CHAIN, "hospital-a", &[7; 32]);
    let wrong_chain = boxkey::sign(&admin(LAB), "other-chain", "lab-b", &[7; 32]);
    let other_admin = boxkey::sign(&admin(0), CHAIN, "lab-b", &[7; 32]);
    let other_key = boxkey::sign(&admin(LAB), CHAIN, "lab-b", &[6; 32]);
    for sig in [wrong_member, wrong_chain, other_admin, other_key] {
        let code = c.send(
            &admin(LAB),
            Msg::SetGateway(pb::SetGateway {
                endpoint: "https://vault.lab-b.example".into(),
                box_public_key: vec![7; 32],
                box_key_signature: sig.to_vec(),
            }),
        );
        assert_eq!(code, Code::BadBoxKeySignature.value());
    }
    assert!(c.get::<Gateway>(&keys::gateway("lab-b")).is_none());
}

#[test]
fn only_a_member_admin_sets_a_gateway() {
    let mut c = Chain::new();
    let alice = key(1);
    c.enrol(&alice);
    // A patient's key: not a member.
    let sig = boxkey::sign(&alice, CHAIN, &patient_id(&alice), &[7; 32]);
    let code = c.send(
        &alice,
        Msg::SetGateway(pb::SetGateway {
            endpoint: "https://x.example".into(),
            box_public_key: vec![7; 32],
            box_key_signature: sig.to_vec(),
        }),
    );
    assert_eq!(code, Code::NotAuthorized.value());
    // An unknown key.
    let stranger = key(2);
    let code = c.send(&stranger, set_gateway(LAB, "https://x.example", [7; 32]));
    assert_eq!(code, Code::UnknownSigner.value());
}

#[test]
fn bad_endpoints_and_keys_are_refused_statelessly() {
    let mut c = Chain::new();
    for (endpoint, key, code) in [
        ("ftp://vault.example", [7; 32], Code::InvalidField),
        ("https://", [7; 32], Code::InvalidField),
        ("https://vault.example", [0; 32], Code::InvalidField),
    ] {
        assert_eq!(
            c.send(&admin(LAB), set_gateway(LAB, endpoint, key)),
            code.value(),
            "{endpoint}"
        );
    }
    let long = format!("https://{}", "a".repeat(300));
    assert_eq!(
        c.send(&admin(LAB), set_gateway(LAB, &long, [7; 32])),
        Code::FieldTooLong.value()
    );
}
