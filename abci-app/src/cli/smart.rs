//! `medledger tx smart`: register and revoke SMART backend clients (RegisterSmartClient,
//! RevokeSmartClient, signed by a member's admin key). The client's public key is read from a
//! JWK file (a JWK, or a JWK Set holding one key) and sent in the ledger's canonical encoding:
//! the SEC1 uncompressed point of a P-384 key (ES384), or the modulus and exponent of an RSA
//! key (RS384), big-endian without leading zeros.

use std::path::PathBuf;

use anyhow::{bail, Context};
use base64ct::{Base64UrlUnpadded, Encoding};
use clap::{Args, Subcommand};
use medledger_tx::pb::{self, tx_body::Msg, SmartKeyAlg};
use serde_json::Value;

/// `tx smart` subcommands.
#[derive(Debug, Subcommand)]
pub enum SmartTx {
    /// Register (or replace) a SMART backend client of your member: its public JWK (ES384 on
    /// P-384, or RS384 with a 2048- to 4096-bit RSA key), whom it acts for and its scopes.
    Register(SmartRegisterArgs),
    /// Revoke a client of your member, for good (its id is never reused).
    Revoke(SmartRevokeArgs),
}

impl SmartTx {
    /// The message the command sends.
    pub(super) fn into_msg(self) -> anyhow::Result<Msg> {
        match self {
            SmartTx::Register(a) => a.into_msg(),
            SmartTx::Revoke(a) => Ok(Msg::RevokeSmartClient(pb::RevokeSmartClient {
                client_id: a.client_id,
            })),
        }
    }
}

/// `tx smart register`.
#[derive(Debug, Args)]
pub struct SmartRegisterArgs {
    /// The OAuth client id (the assertions' `iss` and `sub`).
    #[arg(long = "client-id")]
    client_id: String,
    /// The client's public key: a JWK file, or a JWK Set with exactly one key.
    #[arg(long)]
    jwk: PathBuf,
    /// The key's `kid`, if the JWK has none (or to override it).
    #[arg(long)]
    kid: Option<String>,
    /// The DID of one of your practitioners the client acts for (default: your member itself).
    #[arg(long = "acts-for")]
    acts_for: Option<String>,
    /// A scope it may be granted, e.g. system/Consent.read (repeat the flag for more).
    #[arg(long = "scope", required = true)]
    scopes: Vec<String>,
}

impl SmartRegisterArgs {
    fn into_msg(self) -> anyhow::Result<Msg> {
        let text = std::fs::read_to_string(&self.jwk)
            .with_context(|| format!("reading {}", self.jwk.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", self.jwk.display()))?;
        let key = CanonicalKey::from_jwk(&v)?;
        let kid = match (self.kid, key.kid) {
            (Some(k), _) | (None, Some(k)) => k,
            (None, None) => bail!("the JWK has no kid: give --kid"),
        };
        Ok(Msg::RegisterSmartClient(pb::RegisterSmartClient {
            client_id: self.client_id,
            kid,
            alg: key.alg as i32,
            ec_point: key.ec_point,
            rsa_n: key.rsa_n,
            rsa_e: key.rsa_e,
            acts_for_practitioner: self.acts_for.unwrap_or_default(),
            scopes: self.scopes,
        }))
    }
}

/// `tx smart revoke`.
#[derive(Debug, Args)]
pub struct SmartRevokeArgs {
    /// The client id.
    #[arg(long = "client-id")]
    client_id: String,
}

/// A public JWK in the ledger's encoding.
#[derive(Debug, PartialEq, Eq)]
pub struct CanonicalKey {
    /// ES384 or RS384.
    pub alg: SmartKeyAlg,
    /// ES384: 0x04 || x || y.
    pub ec_point: Vec<u8>,
    /// RS384: the modulus.
    pub rsa_n: Vec<u8>,
    /// RS384: the exponent.
    pub rsa_e: Vec<u8>,
    /// The JWK's `kid`, if any.
    pub kid: Option<String>,
}

fn field(v: &Value, name: &str) -> anyhow::Result<Vec<u8>> {
    let s = v[name]
        .as_str()
        .with_context(|| format!("the JWK has no {name:?}"))?;
    Base64UrlUnpadded::decode_vec(s.trim_end_matches('='))
        .map_err(|_| anyhow::anyhow!("the JWK's {name:?} is not base64url"))
}

fn minimal(mut b: Vec<u8>) -> Vec<u8> {
    let zeros = b.iter().take_while(|x| **x == 0).count();
    b.drain(..zeros);
    b
}

impl CanonicalKey {
    /// The key of a public JWK (or of a JWK Set with exactly one key). A private key (`d`) is
    /// refused: only the public half goes on chain.
    pub fn from_jwk(v: &Value) -> anyhow::Result<CanonicalKey> {
        let v = match v["keys"].as_array() {
            Some(keys) if keys.len() == 1 => &keys[0],
            Some(keys) => bail!("the JWK Set has {} keys; give one", keys.len()),
            None => v,
        };
        if v.get("d").is_some() {
            bail!("this JWK holds a private key; give the public key only");
        }
        let kid = v["kid"].as_str().map(str::to_string);
        let alg = v["alg"].as_str();
        match v["kty"].as_str() {
            Some("EC") => {
                if v["crv"].as_str() != Some("P-384") || alg.is_some_and(|a| a != "ES384") {
                    bail!("an EC key must be on P-384 (crv \"P-384\") and used with ES384");
                }
                let (x, y) = (field(v, "x")?, field(v, "y")?);
                if x.len() != 48 || y.len() != 48 {
                    bail!("a P-384 key's x and y are 48 bytes each");
                }
                let mut ec_point = vec![4u8];
                ec_point.extend_from_slice(&x);
                ec_point.extend_from_slice(&y);
                Ok(CanonicalKey {
                    alg: SmartKeyAlg::Es384,
                    ec_point,
                    rsa_n: vec![],
                    rsa_e: vec![],
                    kid,
                })
            }
            Some("RSA") => {
                if alg.is_some_and(|a| a != "RS384") {
                    bail!("an RSA key is registered for RS384; the JWK says {alg:?}");
                }
                Ok(CanonicalKey {
                    alg: SmartKeyAlg::Rs384,
                    ec_point: vec![],
                    rsa_n: minimal(field(v, "n")?),
                    rsa_e: minimal(field(v, "e")?),
                    kid,
                })
            }
            other => bail!("kty {other:?}: give an EC (P-384) or RSA key"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn jwks_become_the_ledgers_encoding() {
        let x = Base64UrlUnpadded::encode_string(&[1u8; 48]);
        let y = Base64UrlUnpadded::encode_string(&[2u8; 48]);
        let ec = json!({"kty": "EC", "crv": "P-384", "x": x, "y": y, "kid": "k1"});
        let k = CanonicalKey::from_jwk(&json!({ "keys": [ec] })).unwrap();
        assert_eq!(k.alg, SmartKeyAlg::Es384);
        assert_eq!(k.ec_point.len(), 97);
        assert_eq!(k.ec_point[0], 4);
        assert_eq!(k.kid.as_deref(), Some("k1"));
        let rsa = json!({"kty": "RSA", "n": Base64UrlUnpadded::encode_string(&[0, 0xc5, 1]), "e": "AQAB"});
        let k = CanonicalKey::from_jwk(&rsa).unwrap();
        assert_eq!((k.rsa_n, k.rsa_e), (vec![0xc5, 1], vec![1, 0, 1]));
        assert!(
            CanonicalKey::from_jwk(&json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})).is_err()
        );
        assert!(CanonicalKey::from_jwk(
            &json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "AQAB"})
        )
        .is_err());
        assert!(CanonicalKey::from_jwk(&json!({"kty": "OKP"})).is_err());
    }
}
