//! SMART Backend Services clients (`RegisterSmartClient`, `RevokeSmartClient`): the stateless
//! checks of a client's public key and scopes, and the scope grammar the gateway grants and
//! enforces with (one grammar, so the ledger never stores a scope the gateway cannot read).
//!
//! Accepted scopes (docs/fhir.md, "Authorization"): `system/<Resource>.<permissions>`, where
//! `<Resource>` is a FHIR resource type (an ASCII letter, then letters and digits) or `*`, and
//! `<permissions>` is SMART v1 `read` (= `rs`), `write` (= `cud`) or `*` (= `cruds`), or SMART
//! v2 letters out of `c r u d s`, each at most once and in that order (`rs`, `cud`, `cruds`).
//! `patient/` and `user/` scopes, launch context and `openid` are not accepted: a backend
//! service acts as the member or practitioner it is registered for.

use super::{check_count, check_id, check_len};
use crate::error::{Code, TxError};
use crate::limits::*;
use crate::pb::{RegisterSmartClient, RevokeSmartClient, SmartKeyAlg};

/// A set of SMART v2 permissions (`c r u d s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Perms(u8);

impl Perms {
    /// `c`: create.
    pub const CREATE: Perms = Perms(1);
    /// `r`: read by id.
    pub const READ: Perms = Perms(2);
    /// `u`: update.
    pub const UPDATE: Perms = Perms(4);
    /// `d`: delete.
    pub const DELETE: Perms = Perms(8);
    /// `s`: search.
    pub const SEARCH: Perms = Perms(16);
    const LETTERS: [(char, Perms); 5] = [
        ('c', Perms::CREATE),
        ('r', Perms::READ),
        ('u', Perms::UPDATE),
        ('d', Perms::DELETE),
        ('s', Perms::SEARCH),
    ];

    /// Every permission in `self` is in `other`.
    pub fn within(self, other: Perms) -> bool {
        self.0 & !other.0 == 0
    }

    /// The permissions in either.
    pub fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }

    /// The permissions in both.
    pub fn intersection(self, other: Perms) -> Perms {
        Perms(self.0 & other.0)
    }

    /// No permission at all.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// SMART v1 `read`, `write`, `*`, or v2 letters in `cruds` order.
    fn parse(s: &str) -> Option<Perms> {
        match s {
            "read" => return Some(Perms(Perms::READ.0 | Perms::SEARCH.0)),
            "write" => return Some(Perms(Perms::CREATE.0 | Perms::UPDATE.0 | Perms::DELETE.0)),
            "*" => return Some(Perms(31)),
            _ => {}
        }
        let mut next = 0;
        let mut perms = Perms(0);
        for ch in s.chars() {
            let i = Perms::LETTERS[next..].iter().position(|(c, _)| *c == ch)? + next;
            perms = perms.union(Perms::LETTERS[i].1);
            next = i + 1;
        }
        (!perms.is_empty()).then_some(perms)
    }

    /// The v2 letters, in `cruds` order.
    pub fn letters(self) -> String {
        Perms::LETTERS
            .iter()
            .filter(|(_, p)| p.within(self))
            .map(|(c, _)| *c)
            .collect()
    }
}

/// A parsed `system/<Resource>.<permissions>` scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmartScope {
    /// A FHIR resource type, or `*` for every type.
    pub resource: String,
    /// What it allows on that type.
    pub perms: Perms,
}

impl SmartScope {
    /// Parses one scope of the accepted grammar (module docs); the error says what is wrong.
    pub fn parse(s: &str) -> Result<SmartScope, String> {
        if s.len() > MAX_SMART_SCOPE_LEN {
            return Err(format!(
                "scope is {} bytes; the limit is {MAX_SMART_SCOPE_LEN}",
                s.len()
            ));
        }
        let printable = s.chars().take(MAX_SMART_SCOPE_LEN).collect::<String>();
        let rest = s.strip_prefix("system/").ok_or_else(|| {
            format!("scope {printable:?}: only system/ scopes are accepted (a backend service)")
        })?;
        let (resource, perms) = rest.rsplit_once('.').ok_or_else(|| {
            format!("scope {printable:?}: give system/<Resource>.<read|write|*|cruds letters>")
        })?;
        let type_ok = resource == "*"
            || (resource.starts_with(|c: char| c.is_ascii_uppercase())
                && resource.chars().all(|c| c.is_ascii_alphanumeric()));
        if !type_ok {
            return Err(format!(
                "scope {printable:?}: {resource:?} is not a FHIR resource type or *"
            ));
        }
        let perms = Perms::parse(perms).ok_or_else(|| {
            format!(
                "scope {printable:?}: permissions {perms:?} are not read, write, * or letters of \
                 cruds in that order"
            )
        })?;
        Ok(SmartScope {
            resource: resource.to_string(),
            perms,
        })
    }

    /// The permissions this scope gives on `resource`.
    pub fn on(&self, resource: &str) -> Perms {
        if self.resource == "*" || self.resource == resource {
            self.perms
        } else {
            Perms::default()
        }
    }
}

/// Checks a scope list: 1..=[`MAX_SMART_SCOPES`] scopes of the accepted grammar, no duplicates.
pub fn check_scopes(scopes: &[String]) -> Result<Vec<SmartScope>, TxError> {
    check_count("scopes", scopes.len(), MAX_SMART_SCOPES)?;
    if scopes.is_empty() {
        return Err(TxError::new(
            Code::BadSmartScope,
            "scopes: name at least one, e.g. system/Consent.read",
        ));
    }
    let mut parsed = Vec::with_capacity(scopes.len());
    for (i, s) in scopes.iter().enumerate() {
        check_len("scopes", s, MAX_SMART_SCOPE_LEN)?;
        if scopes[..i].contains(s) {
            return Err(TxError::new(
                Code::BadSmartScope,
                format!("scopes: {s:?} is listed twice"),
            ));
        }
        parsed.push(SmartScope::parse(s).map_err(|e| TxError::new(Code::BadSmartScope, e))?);
    }
    Ok(parsed)
}

/// The bit length of an unsigned big-endian integer without leading zero bytes (`None` if it
/// has one, or is empty).
fn bits(be: &[u8]) -> Option<usize> {
    let first = *be.first()?;
    if first == 0 {
        return None;
    }
    Some((be.len() - 1) * 8 + (8 - first.leading_zeros() as usize))
}

fn bad_key(msg: impl Into<String>) -> TxError {
    TxError::new(Code::BadSmartKey, msg)
}

/// Checks a client's key in its canonical encoding: a SEC1 uncompressed point on P-384 for
/// ES384; for RS384 a modulus of [`MIN_SMART_RSA_BITS`]..=[`MAX_SMART_RSA_BITS`] bits that is
/// odd and an odd exponent of 3 up to 2^32 - 1, both minimal big-endian. The other algorithm's
/// fields must be empty, so that one key has one encoding.
pub fn check_smart_key(alg: i32, ec_point: &[u8], n: &[u8], e: &[u8]) -> Result<(), TxError> {
    match SmartKeyAlg::try_from(alg) {
        Ok(SmartKeyAlg::Es384) => {
            if !n.is_empty() || !e.is_empty() {
                return Err(bad_key("an ES384 key has no rsa_n or rsa_e"));
            }
            if ec_point.len() != 97 || ec_point.first() != Some(&4) {
                return Err(bad_key(format!(
                    "ec_point is {} bytes; an ES384 key is the SEC1 uncompressed P-384 point \
                     (97 bytes: 0x04 || x || y)",
                    ec_point.len()
                )));
            }
            p384::PublicKey::from_sec1_bytes(ec_point)
                .map(|_| ())
                .map_err(|_| bad_key("ec_point is not a point on P-384"))
        }
        Ok(SmartKeyAlg::Rs384) => {
            if !ec_point.is_empty() {
                return Err(bad_key("an RS384 key has no ec_point"));
            }
            let n_bits = bits(n).ok_or_else(|| {
                bad_key("rsa_n: give the modulus big-endian without leading zero bytes")
            })?;
            if !(MIN_SMART_RSA_BITS..=MAX_SMART_RSA_BITS).contains(&n_bits) {
                return Err(bad_key(format!(
                    "rsa_n is {n_bits} bits; an RS384 key has {MIN_SMART_RSA_BITS} to \
                     {MAX_SMART_RSA_BITS}"
                )));
            }
            if n.last().is_none_or(|b| b & 1 == 0) {
                return Err(bad_key("rsa_n is even: not an RSA modulus"));
            }
            let e_ok = bits(e).is_some_and(|b| (2..=32).contains(&b))
                && e.last().is_some_and(|b| b & 1 == 1);
            if !e_ok {
                return Err(bad_key(
                    "rsa_e: give an odd public exponent of 3 to 2^32 - 1 (usually 65537, AQAB), \
                     big-endian without leading zero bytes",
                ));
            }
            Ok(())
        }
        _ => Err(bad_key(format!(
            "alg {alg} is not ES384 (1) or RS384 (2), the algorithms SMART servers accept"
        ))),
    }
}

/// RegisterSmartClient: the id, `kid`, key, acts-for DID and scopes, all statelessly.
pub(crate) fn check_register(m: &RegisterSmartClient) -> Result<(), TxError> {
    check_id("client_id", &m.client_id)?;
    if m.client_id.contains('*') {
        return Err(TxError::new(
            Code::InvalidField,
            "client_id may only use letters, digits and - _ . :",
        ));
    }
    check_len("kid", &m.kid, MAX_SMART_KID_LEN)?;
    if m.kid.is_empty() || !m.kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TxError::new(
            Code::InvalidField,
            "kid: give the JWK kid, printable ASCII without spaces",
        ));
    }
    check_smart_key(m.alg, &m.ec_point, &m.rsa_n, &m.rsa_e)?;
    if !m.acts_for_practitioner.is_empty() {
        check_id("acts_for_practitioner", &m.acts_for_practitioner)?;
    }
    check_scopes(&m.scopes).map(|_| ())
}

/// RevokeSmartClient: the id.
pub(crate) fn check_revoke(m: &RevokeSmartClient) -> Result<(), TxError> {
    check_id("client_id", &m.client_id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scopes_of_smart_v1_and_v2_parse_and_others_are_refused() {
        let s = SmartScope::parse("system/Consent.read").unwrap();
        assert_eq!(
            (s.resource.as_str(), s.perms.letters()),
            ("Consent", "rs".into())
        );
        assert_eq!(
            SmartScope::parse("system/Claim.write")
                .unwrap()
                .perms
                .letters(),
            "cud"
        );
        assert_eq!(
            SmartScope::parse("system/*.*").unwrap().perms.letters(),
            "cruds"
        );
        assert_eq!(
            SmartScope::parse("system/Claim.cu")
                .unwrap()
                .perms
                .letters(),
            "cu"
        );
        for bad in [
            "patient/Consent.read",
            "user/*.read",
            "system/Consent",
            "system/consent.read",
            "system/Consent.sr",
            "system/Consent.rr",
            "system/Consent.x",
            "system/Consent.",
            "system/.read",
            "system/Con-sent.read",
            "openid",
        ] {
            assert!(SmartScope::parse(bad).is_err(), "{bad}");
        }
        assert!(SmartScope::parse("system/Consent.read")
            .unwrap()
            .on("Claim")
            .is_empty());
        assert_eq!(
            SmartScope::parse("system/*.rs").unwrap().on("Claim"),
            SmartScope::parse("system/Claim.read").unwrap().perms
        );
    }

    #[test]
    fn scope_lists_are_bounded_and_have_no_duplicates() {
        let one = vec!["system/Consent.read".to_string()];
        assert!(check_scopes(&one).is_ok());
        assert_eq!(check_scopes(&[]).unwrap_err().code, Code::BadSmartScope);
        assert_eq!(
            check_scopes(&[one[0].clone(), one[0].clone()])
                .unwrap_err()
                .code,
            Code::BadSmartScope
        );
        let many: Vec<String> = (0..=MAX_SMART_SCOPES)
            .map(|i| format!("system/R{i}.read"))
            .collect();
        assert_eq!(check_scopes(&many).unwrap_err().code, Code::TooManyItems);
        let long = vec![format!("system/{}.read", "A".repeat(MAX_SMART_SCOPE_LEN))];
        assert_eq!(check_scopes(&long).unwrap_err().code, Code::FieldTooLong);
    }

    #[test]
    fn keys_must_be_a_p384_point_or_a_sized_rsa_key() {
        let es = SmartKeyAlg::Es384 as i32;
        let rs = SmartKeyAlg::Rs384 as i32;
        // The P-384 generator, uncompressed.
        let g = hex::decode(
            "04aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab73617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
        )
        .unwrap();
        assert!(check_smart_key(es, &g, &[], &[]).is_ok());
        let mut off = g.clone();
        off[96] ^= 1;
        let code = |r: Result<(), TxError>| r.unwrap_err().code;
        assert_eq!(code(check_smart_key(es, &off, &[], &[])), Code::BadSmartKey);
        assert_eq!(
            code(check_smart_key(es, &g[..49], &[], &[])),
            Code::BadSmartKey
        );
        assert_eq!(code(check_smart_key(es, &g, &[1], &[])), Code::BadSmartKey);
        assert_eq!(code(check_smart_key(0, &g, &[], &[])), Code::BadSmartKey);
        let mut n = vec![0xc5u8; 256];
        n[255] |= 1;
        let e = [1u8, 0, 1];
        assert!(check_smart_key(rs, &[], &n, &e).is_ok());
        assert_eq!(
            code(check_smart_key(rs, &[], &n[1..], &e)),
            Code::BadSmartKey
        );
        assert_eq!(
            code(check_smart_key(rs, &[], &vec![0xc5; 513], &e)),
            Code::BadSmartKey
        );
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n);
        assert_eq!(
            code(check_smart_key(rs, &[], &padded, &e)),
            Code::BadSmartKey
        );
        assert_eq!(code(check_smart_key(rs, &[], &n, &[1])), Code::BadSmartKey);
        assert_eq!(
            code(check_smart_key(rs, &[], &n, &[1, 0, 0])),
            Code::BadSmartKey
        );
        assert_eq!(code(check_smart_key(rs, &g, &n, &e)), Code::BadSmartKey);
    }
}
