//! Pure rules the ledger applies and a verifier can re-evaluate without a ledger: which consent
//! permits an access ([`consent`]), how a claim is adjudicated ([`claims`]), when a record
//! held under threshold custody is erased ([`custody`]), and what names a release of the
//! pages ([`web_release`]).

pub mod claims;
pub mod consent;
pub mod custody;
pub mod web_release;
