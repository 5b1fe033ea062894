//! Test vectors for the browser's opening of a patient's own record (`web/src/vault.ts`,
//! tested by `web/test/vault.test.ts`), written by this crate's own functions so that both
//! sides implement docs/vault.md identically.
//!
//! `MEDLEDGER_WRITE_VECTORS=1 cargo test --release -p medledger-vault --test web_vectors`
//! rewrites `web/test/vectors/vault.json`; without it the test fails when the file differs from
//! what the code produces now. Everything is deterministic: fixed seeds and a seeded RNG.

use hmac::{Hmac, KeyInit, Mac};
use medledger_vault::record::{self, content_hash, key_commitment, DataKey, RecordMeta};
use medledger_vault::share::{open_shared_key, patient_box_key, share_data_key, MemberBoxKey};
use medledger_vault::threshold::{
    combine, open_share, seal_share, seal_split, Commitments, KeyShare, ThresholdError,
};
use rand_v010::rngs::StdRng;
use rand_v010::SeedableRng;
use sha2_v011::Sha256;

const CHAIN: &str = "medledger-localnet";
const PATIENT: &str = "pt-web-vectors";
const PATIENT_BOX_INFO: &[u8] = b"medledger/patient-box/v1";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any HMAC key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The patient's box secret (HKDF-SHA256 of the Ed25519 seed, salt empty, info
/// "medledger/patient-box/v1", 32 bytes), written out as RFC 5869 with one output block: a
/// second computation beside the crate's `share::patient_box_key`, which must agree.
fn patient_box_secret(seed: &[u8; 32]) -> [u8; 32] {
    let prk = hmac(&[], &[seed]);
    hmac(&prk, &[PATIENT_BOX_INFO, &[1]])
}

fn meta(record_id: &str) -> RecordMeta<'_> {
    RecordMeta {
        record_id,
        patient_id: PATIENT,
        resource_type: "Observation",
        version: 1,
    }
}

/// A copy of a share (a share is not `Clone`).
fn copy(s: &KeyShare) -> KeyShare {
    KeyShare::decode(s.encode().as_slice()).expect("decode")
}

/// What a 2-of-3 threshold record gives: the sealed record, the shares, the commitments, the
/// data key and every share sealed to the patient (hex, quoted).
type Threshold = (
    record::SealedRecord,
    Vec<KeyShare>,
    Commitments,
    DataKey,
    Vec<String>,
);

fn threshold(
    rng: &mut StdRng,
    patient_box: &MemberBoxKey,
    record_id: &str,
    plain: &[u8],
) -> Threshold {
    let (sealed, shares, commitments) =
        seal_split(&meta(record_id), plain, 2, 3, rng).expect("split");
    let key = combine(&[copy(&shares[0]), copy(&shares[2])], &commitments).expect("combine");
    let sealed_shares: Vec<String> = shares
        .iter()
        .map(|s| {
            let sealed = seal_share(
                s,
                CHAIN,
                record_id,
                PATIENT,
                &patient_box.public_bytes(),
                rng,
            )
            .expect("seal share");
            let opened =
                open_share(patient_box, CHAIN, record_id, PATIENT, &sealed).expect("open share");
            assert_eq!(opened.index(), s.index());
            format!("\"{}\"", hex(&sealed.encode()))
        })
        .collect();
    (sealed, shares, commitments, key, sealed_shares)
}

fn vectors() -> String {
    let mut rng = StdRng::seed_from_u64(27);
    let seed = [7u8; 32];
    let box_secret = patient_box_secret(&seed);
    let patient_box = patient_box_key(&seed).expect("box key");
    assert_eq!(*patient_box.secret_bytes(), box_secret);
    let other_box = MemberBoxKey::from_secret_bytes(&[9u8; 32]).expect("box key");
    let mut out = String::from("{\n");
    out += &format!(
        "  \"chain_id\": \"{CHAIN}\",\n  \"patient_id\": \"{PATIENT}\",\n  \"patient_seed\": \"{}\",\n  \"patient_box_secret\": \"{}\",\n  \"patient_box_public\": \"{}\",\n",
        hex(&seed),
        hex(&box_secret),
        hex(&patient_box.public_bytes())
    );

    // A record held whole (before threshold custody): its key shared to the patient.
    let plain = br#"{"resourceType":"Observation","id":"obs-1","status":"final","code":{"text":"Haemoglobin"}}"#;
    let (sealed, key) = record::seal(&meta("rec-whole"), plain, &mut rng).expect("seal");
    let shared = share_data_key(
        &patient_box.public_bytes(),
        "rec-whole",
        PATIENT,
        &key,
        &mut rng,
    )
    .expect("share");
    let to_other = share_data_key(
        &other_box.public_bytes(),
        "rec-whole",
        PATIENT,
        &key,
        &mut rng,
    )
    .expect("share");
    assert_eq!(
        open_shared_key(&patient_box, "rec-whole", PATIENT, &shared)
            .expect("open")
            .as_bytes(),
        key.as_bytes()
    );
    out += &format!(
        "  \"whole\": {{\n    \"record_id\": \"rec-whole\",\n    \"resource_type\": \"Observation\",\n    \"version\": 1,\n    \"plaintext\": \"{}\",\n    \"sealed\": \"{}\",\n    \"content_hash\": \"{}\",\n    \"key_id\": \"kc1-{}\",\n    \"data_key\": \"{}\",\n    \"shared_key\": \"{}\",\n    \"shared_key_to_another_box\": \"{}\"\n  }},\n",
        hex(plain),
        hex(&sealed.encode()),
        hex(&content_hash(&sealed)),
        hex(&key_commitment(&key, "rec-whole").expect("commitment")),
        hex(key.as_bytes()),
        hex(&shared.encode()),
        hex(&to_other.encode()),
    );

    // Threshold records, 2-of-3: every share sealed to the patient (the patient is the reader).
    let plain = br#"{"resourceType":"Observation","id":"obs-2","status":"final","code":{"text":"Blood pressure"}}"#;
    let (sealed, shares, commitments, key, sealed_shares) =
        threshold(&mut rng, &patient_box, "rec-threshold", plain);
    // A wrong share (holder 2 changed its value) sealed properly: it opens, then fails Feldman.
    let mut wrong = *copy(&shares[1]).encode();
    wrong[2] ^= 1;
    let wrong = KeyShare::decode(&wrong).expect("still canonical");
    assert!(matches!(
        combine(&[copy(&shares[0]), copy(&wrong)], &commitments),
        Err(ThresholdError::BadShare { index: 2 })
    ));
    let wrong_sealed = seal_share(
        &wrong,
        CHAIN,
        "rec-threshold",
        PATIENT,
        &patient_box.public_bytes(),
        &mut rng,
    )
    .expect("seal");
    // The right share 1, sealed to the patient's box key but for another reader id.
    let other_reader = seal_share(
        &shares[0],
        CHAIN,
        "rec-threshold",
        "hospital-a",
        &patient_box.public_bytes(),
        &mut rng,
    )
    .expect("seal");
    let commitment_hex: Vec<String> = commitments
        .to_bytes()
        .iter()
        .map(|c| format!("\"{}\"", hex(c)))
        .collect();
    out += &format!(
        "  \"threshold\": {{\n    \"record_id\": \"rec-threshold\",\n    \"resource_type\": \"Observation\",\n    \"version\": 1,\n    \"threshold\": 2,\n    \"plaintext\": \"{}\",\n    \"sealed\": \"{}\",\n    \"content_hash\": \"{}\",\n    \"key_id\": \"kc1-{}\",\n    \"data_key\": \"{}\",\n    \"commitments\": [{}],\n    \"sealed_shares\": [{}],\n    \"wrong_share_2\": \"{}\",\n    \"share_1_for_another_reader\": \"{}\"\n  }},\n",
        hex(plain),
        hex(&sealed.encode()),
        hex(&content_hash(&sealed)),
        hex(&key_commitment(&key, "rec-threshold").expect("commitment")),
        hex(key.as_bytes()),
        commitment_hex.join(", "),
        sealed_shares.join(", "),
        hex(&wrong_sealed.encode()),
        hex(&other_reader.encode()),
    );

    // A second threshold record: its commitments do not match the first one's shares.
    let (_, _, other_commitments, _, _) = threshold(&mut rng, &patient_box, "rec-other", b"{}");
    let other_hex: Vec<String> = other_commitments
        .to_bytes()
        .iter()
        .map(|c| format!("\"{}\"", hex(c)))
        .collect();
    out += &format!("  \"other_commitments\": [{}]\n}}\n", other_hex.join(", "));
    out
}

#[test]
fn the_web_vectors_are_what_this_crate_produces() {
    let want = vectors();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../web/test/vectors/vault.json"
    );
    if std::env::var_os("MEDLEDGER_WRITE_VECTORS").is_some() {
        std::fs::write(path, &want).expect("write the vectors");
        return;
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "web/test/vectors/vault.json differs from what crates/vault produces; regenerate with \
         MEDLEDGER_WRITE_VECTORS=1 cargo test --release -p medledger-vault --test web_vectors"
    );
}

#[test]
fn the_vectors_are_deterministic() {
    assert_eq!(vectors(), vectors());
}
