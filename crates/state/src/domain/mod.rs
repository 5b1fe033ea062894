//! The ledger's rules, one module per domain. Each handler reads through a [`TxState`], stages
//! its writes there and returns the events it emits, or refuses with a [`TxError`].
//!
//! [`TxState`]: crate::view::TxState
//! [`TxError`]: medledger_tx::TxError

pub mod access;
pub mod claims;
pub mod consent;
pub mod gateway;
pub mod governance;
pub mod members;
pub mod patients;
pub mod practitioners;
pub mod records;
pub mod validators;

/// The block a transaction executes in. Time and height come from the block header, never from
/// a clock.
#[derive(Clone, Debug)]
pub struct BlockCtx {
    /// The ledger's chain id.
    pub chain_id: String,
    /// The block height.
    pub height: u64,
    /// The block time, unix seconds.
    pub time: u64,
}

/// An ABCI event: CometBFT indexes its attributes, so `tx_search` finds e.g. every access to a
/// patient (`medledger.access.patient_id='pt-…'`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event type, e.g. `medledger.consent.granted`.
    pub kind: &'static str,
    /// Attribute name and value pairs, all indexed.
    pub attributes: Vec<(&'static str, String)>,
}

impl Event {
    /// An event of `kind` with `attributes`.
    pub fn new(kind: &'static str, attributes: Vec<(&'static str, String)>) -> Self {
        Event { kind, attributes }
    }
}
