//! Pure rules the ledger applies and a verifier can re-evaluate without a ledger: which consent
//! permits an access ([`consent`]), how a claim is adjudicated ([`claims`]), and when a record
//! held under threshold custody is erased ([`custody`]).

pub mod claims;
pub mod consent;
pub mod custody;
