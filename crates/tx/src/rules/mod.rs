//! Pure rules the ledger applies and a verifier can re-evaluate without a ledger: which consent
//! permits an access ([`consent`]), and how a claim is adjudicated ([`claims`]).

pub mod claims;
pub mod consent;
