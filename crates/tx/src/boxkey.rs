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

#[cfg(test)]
mod tests {
    use super::*;

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
