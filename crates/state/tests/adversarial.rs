//! Adversarial input: arbitrary and mutated bytes through CheckTx, ProcessProposal and
//! FinalizeBlock never panic, always get a known code, and never change state unless a valid
//! tx was applied.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use medledger_tx::pb::{self, tx_body::Msg, Purpose};
use medledger_tx::Code;
use proptest::prelude::*;

fn valid_txs(c: &mut Chain) -> Vec<Vec<u8>> {
    let alice = key(1);
    vec![
        c.tx(&alice, Msg::RegisterPatient(pb::RegisterPatient {})),
        c.tx(
            &alice,
            Msg::GrantConsent(pb::GrantConsent {
                grantee: "hospital-a".into(),
                data_classes: vec!["*".into()],
                purposes: vec![Purpose::Treat as i32],
                ..Default::default()
            }),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// Random bytes: refused with a known code by CheckTx, ProcessProposal and FinalizeBlock,
    /// and a block of them leaves the app hash where it was.
    #[test]
    fn arbitrary_bytes_are_refused_without_effect(txs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..8)) {
        let mut c = Chain::new();
        let before = c.block(vec![]).app_hash;
        for tx in &txs {
            let code = c.ledger.check_tx(tx).err().map(|e| e.code);
            prop_assert!(code.is_some(), "random bytes passed CheckTx");
        }
        prop_assert!(c.ledger.process_proposal(c.height, &txs).is_err());
        let r = c.block(txs.clone());
        prop_assert_eq!(r.app_hash, before);
        for t in &r.tx_results {
            prop_assert!(Code::from_value(t.code).is_some(), "unknown code {}", t.code);
        }
    }

    /// Valid txs with one byte flipped: never panic; either refused with a known code, or (when
    /// the flip lands in a field that still decodes, verifies and is canonical, which a signature
    /// makes impossible) applied.
    #[test]
    fn mutated_valid_txs_are_refused_with_known_codes(which in 0..2usize, pos in any::<prop::sample::Index>(), bit in 0..8u8) {
        let mut c = Chain::new();
        let mut txs = valid_txs(&mut c);
        let tx = &mut txs[which];
        let i = pos.index(tx.len());
        tx[i] ^= 1 << bit;
        let r = c.block(vec![txs[which].clone()]);
        let code = r.tx_results[0].code;
        prop_assert!(code != 0, "a mutated signed tx was applied");
        prop_assert!(Code::from_value(code).is_some());
    }
}

#[test]
fn abuse_table_each_gets_its_own_code() {
    let mut c = Chain::new();
    let (alice, bob) = (key(1), key(2));
    c.ok(&alice, Msg::RegisterPatient(pb::RegisterPatient {}));
    c.ok(&bob, Msg::RegisterPatient(pb::RegisterPatient {}));
    c.ok(
        &alice,
        Msg::GrantConsent(pb::GrantConsent {
            grantee: "hospital-a".into(),
            data_classes: vec!["*".into()],
            purposes: vec![Purpose::Treat as i32],
            ..Default::default()
        }),
    );
    let wrong_chain = {
        let body = pb::TxBody {
            chain_id: "other".into(),
            sequence: 0,
            msg: Some(Msg::RegisterPatient(pb::RegisterPatient {})),
        };
        medledger_tx::sign_tx(&key(9), &body)
    };
    let cases: Vec<(&str, Vec<u8>, Code)> = vec![
        ("wrong chain id", wrong_chain, Code::WrongChainId),
        (
            "another patient's consent revoked",
            c.tx(
                &bob,
                Msg::RevokeConsent(pb::RevokeConsent {
                    consent_id: "c-1".into(),
                }),
            ),
            Code::NotConsentOwner,
        ),
        (
            "patient logs access",
            c.tx(
                &alice,
                Msg::LogAccess(pb::LogAccess {
                    patient_id: patient_id(&bob),
                    record_id: "r".into(),
                    data_class: "Observation".into(),
                    purpose: Purpose::Treat as i32,
                    action: 0,
                }),
            ),
            Code::NotAuthorized,
        ),
        (
            "member reads without consent",
            c.tx(
                &admin(1),
                Msg::LogAccess(pb::LogAccess {
                    patient_id: patient_id(&alice),
                    record_id: "r".into(),
                    data_class: "Observation".into(),
                    purpose: Purpose::Treat as i32,
                    action: 0,
                }),
            ),
            Code::NoPermittingConsent,
        ),
        (
            "oversized field",
            c.tx(
                &alice,
                Msg::RevokeConsent(pb::RevokeConsent {
                    consent_id: "x".repeat(1000),
                }),
            ),
            Code::FieldTooLong,
        ),
        (
            "unknown signer grants",
            c.tx(
                &key(77),
                Msg::GrantConsent(pb::GrantConsent {
                    grantee: "hospital-a".into(),
                    data_classes: vec!["*".into()],
                    purposes: vec![Purpose::Treat as i32],
                    ..Default::default()
                }),
            ),
            Code::UnknownSigner,
        ),
    ];
    for (what, tx, code) in cases {
        let r = c.block(vec![tx]);
        assert_eq!(
            r.tx_results[0].code,
            code.value(),
            "{what}: {}",
            r.tx_results[0].log
        );
    }
}
