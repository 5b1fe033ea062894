//! The box-key statement: a member's Ed25519 admin key vouches for the member's X25519 box key,
//! to which other members' record-vault gateways share data keys (`SetGateway`).
//!
//! The bytes are exactly those of `medledger_vault::share::box_key_statement` (docs/vault.md):
//!
//! `"medledger/vault/box-key/v1" || u32be(len(chain_id)) || chain_id || u32be(len(member_id)) ||
//! member_id || x25519 public key (32)`
//!
//! They are rebuilt here so that the state machine checks them without depending on the vault's
//! cryptography (HPKE, AEADs); a test in `medledger-gateway` pins the two to the same bytes.
//!
//! A patient's box key (`RegisterPatientBoxKey`) carries no statement: the patient's own key
//! signs the tx. It is checked to be a usable X25519 public key ([`check_x25519_public`]).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::error::{Code, TxError};

/// Domain separation of the statement (the vault's `BOX_KEY_STATEMENT_DOMAIN`).
pub const BOX_KEY_STATEMENT_DOMAIN: &[u8] = b"medledger/vault/box-key/v1";

fn put_lp(out: &mut Vec<u8>, field: &[u8]) {
    // Fields are ids bounded far below 4 GiB by the tx limits.
    out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(field);
}

/// The bytes the admin key signs.
pub fn statement(chain_id: &str, member_id: &str, box_public_key: &[u8; 32]) -> Vec<u8> {
    let mut out = BOX_KEY_STATEMENT_DOMAIN.to_vec();
    put_lp(&mut out, chain_id.as_bytes());
    put_lp(&mut out, member_id.as_bytes());
    out.extend_from_slice(box_public_key);
    out
}

/// The admin key's signature over the statement.
pub fn sign(
    admin: &SigningKey,
    chain_id: &str,
    member_id: &str,
    box_public_key: &[u8; 32],
) -> [u8; 64] {
    admin
        .sign(&statement(chain_id, member_id, box_public_key))
        .to_bytes()
}

/// Checks `signature` by `admin_key` over the statement (strict verification), refusing with
/// [`Code::BadBoxKeySignature`].
pub fn verify(
    admin_key: &[u8; 32],
    signature: &[u8],
    chain_id: &str,
    member_id: &str,
    box_public_key: &[u8; 32],
) -> Result<(), TxError> {
    let refuse = |why: &str| {
        TxError::new(
            Code::BadBoxKeySignature,
            format!("the box key of {member_id:?} must be signed by the admin key that sends SetGateway: {why}"),
        )
    };
    let sig =
        <[u8; 64]>::try_from(signature).map_err(|_| refuse("the signature must be 64 bytes"))?;
    let vk = VerifyingKey::from_bytes(admin_key).map_err(|_| refuse("not an Ed25519 key"))?;
    vk.verify_strict(
        &statement(chain_id, member_id, box_public_key),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| refuse("the signature does not verify"))
}

/// `2^255 - 19`, little-endian: an X25519 u-coordinate at or above it is not canonical.
const P25519_LE: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// Checks that `key` is an X25519 public key an honest key pair has: 32 bytes, a canonical
/// u-coordinate (below `2^255 - 19`, top bit clear), of a point of Curve25519 itself (not of
/// its quadratic twist) that is not of small order (which also excludes all zero). Refuses with
/// [`Code::BadPatientBoxKey`]. Deterministic: field arithmetic only.
pub fn check_x25519_public(key: &[u8]) -> Result<[u8; 32], TxError> {
    let refuse = |why: &str| {
        TxError::new(
            Code::BadPatientBoxKey,
            format!("box_key must be an X25519 public key: {why}"),
        )
    };
    let bytes: [u8; 32] = key
        .try_into()
        .map_err(|_| refuse(&format!("it is {} bytes, not 32", key.len())))?;
    // Little-endian comparison with p, from the most significant byte.
    let canonical = bytes
        .iter()
        .rev()
        .zip(P25519_LE.iter().rev())
        .find(|(b, p)| b != p)
        .is_some_and(|(b, p)| b < p);
    if !canonical {
        return Err(refuse(
            "not a canonical u-coordinate (it is 2^255 - 19 or more)",
        ));
    }
    let point = curve25519_dalek::montgomery::MontgomeryPoint(bytes)
        .to_edwards(0)
        .ok_or_else(|| refuse("not a point of Curve25519 (a point of its twist)"))?;
    if point.is_small_order() {
        return Err(refuse("a point of small order (all zero is one)"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_x25519_public_key_is_canonical_on_the_curve_and_not_of_small_order() {
        // The RFC 7748 section 6.1 public keys of Alice and Bob.
        let alice = hex::decode("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
            .unwrap();
        let bob = hex::decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
            .unwrap();
        assert!(check_x25519_public(&alice).is_ok());
        assert!(check_x25519_public(&bob).is_ok());
        let bad = |k: &[u8]| check_x25519_public(k).unwrap_err().code;
        assert_eq!(bad(&alice[..31]), Code::BadPatientBoxKey);
        assert_eq!(bad(&[0; 32]), Code::BadPatientBoxKey);
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(bad(&one), Code::BadPatientBoxKey, "u = 1 has order 4");
        assert_eq!(bad(&P25519_LE), Code::BadPatientBoxKey, "p itself");
        let mut high = [0u8; 32];
        high.copy_from_slice(&alice);
        high[31] |= 0x80;
        assert_eq!(bad(&high), Code::BadPatientBoxKey, "top bit set");
        let mut nine = [0u8; 32];
        nine[0] = 9;
        assert!(check_x25519_public(&nine).is_ok(), "the base point");
        // About half of all u-coordinates are points of the twist: some small ones are refused
        // as such, with the code.
        let twist = (2u8..40)
            .filter_map(|u| {
                let mut k = [0u8; 32];
                k[0] = u;
                check_x25519_public(&k).err()
            })
            .inspect(|e| assert_eq!(e.code, Code::BadPatientBoxKey))
            .filter(|e| e.message.contains("twist"))
            .count();
        assert!(twist > 0);
    }

    #[test]
    fn a_signature_serves_one_chain_member_and_key() {
        let admin = SigningKey::from_bytes(&[7; 32]);
        let pk = admin.verifying_key().to_bytes();
        let bk = [9u8; 32];
        let sig = sign(&admin, "c", "lab-b", &bk);
        assert!(verify(&pk, &sig, "c", "lab-b", &bk).is_ok());
        for (chain, member, key) in [
            ("d", "lab-b", bk),
            ("c", "lab-c", bk),
            ("c", "lab-b", [8; 32]),
        ] {
            assert_eq!(
                verify(&pk, &sig, chain, member, &key).unwrap_err().code,
                Code::BadBoxKeySignature
            );
        }
        assert!(verify(&pk, &sig[..63], "c", "lab-b", &bk).is_err());
    }

    #[test]
    fn statement_layout_is_pinned() {
        let s = statement("c", "m", &[1; 32]);
        let mut want = b"medledger/vault/box-key/v1".to_vec();
        want.extend_from_slice(&[0, 0, 0, 1, b'c', 0, 0, 0, 1, b'm']);
        want.extend_from_slice(&[1; 32]);
        assert_eq!(s, want);
    }
}
