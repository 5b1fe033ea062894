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
pub mod smart;
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
    /// Key proofs of the block's txs already verified on every core before the txs are applied
    /// (see `Ledger::finalize_block`); handlers verify the rest themselves. Speed only: it
    /// holds only proofs that passed.
    pub key_proofs: medledger_tx::keyproof::Verified,
}

impl BlockCtx {
    /// The context of block `height` at `time`, with no proof verified ahead.
    pub fn new(chain_id: impl Into<String>, height: u64, time: u64) -> Self {
        BlockCtx {
            chain_id: chain_id.into(),
            height,
            time,
            key_proofs: Default::default(),
        }
    }
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
