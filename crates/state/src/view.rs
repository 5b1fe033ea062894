//! Reading state through layers of staged writes.
//!
//! A block stages its writes in a [`BlockState`] over the committed store; each transaction
//! stages its own in a [`TxState`] over the block, and only an accepted transaction's writes are
//! merged into the block. A refused transaction therefore writes nothing.

use prost::Message;

use crate::error::StoreError;
use crate::store::{Store, WriteSet};

/// Read access to a state.
pub trait StateRead {
    /// The current value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// The value of `key` decoded as the protobuf message `M`.
    fn get_msg<M: Message + Default>(&self, key: &[u8]) -> Result<Option<M>, StoreError> {
        match self.get(key)? {
            Some(bytes) => M::decode(bytes.as_slice())
                .map(Some)
                .map_err(|e| corrupt(key, e)),
            None => Ok(None),
        }
    }

    /// The counter at `key`; 0 when absent.
    fn get_u64(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.get(key)? {
            Some(bytes) => medledger_tx::keys::decode_u64(&bytes)
                .ok_or_else(|| corrupt(key, "counter is not 8 bytes")),
            None => Ok(0),
        }
    }
}

fn corrupt(key: &[u8], reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.to_string(),
    }
}

impl StateRead for Store {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Store::get(self, key)
    }
}

/// Staged writes over a base state.
pub struct Overlay<'a, S: StateRead + ?Sized> {
    base: &'a S,
    writes: WriteSet,
}

/// The state of a block being executed: staged writes over the committed store.
pub type BlockState<'a> = Overlay<'a, Store>;
/// The state of one transaction: staged writes over the block.
pub type TxState<'a, 'b> = Overlay<'a, BlockState<'b>>;

impl<'a, S: StateRead + ?Sized> Overlay<'a, S> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            writes: WriteSet::new(),
        }
    }

    /// Stages `key` = `value`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Stages the deletion of `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Stages a protobuf message.
    pub fn put_msg<M: Message>(&mut self, key: Vec<u8>, msg: &M) {
        self.put(key, msg.encode_to_vec());
    }

    /// Stages a counter.
    pub fn put_u64(&mut self, key: Vec<u8>, n: u64) {
        self.put(key, medledger_tx::keys::encode_u64(n));
    }

    /// Takes the staged writes.
    pub fn into_writes(self) -> WriteSet {
        self.writes
    }

    /// Adds writes staged elsewhere (an accepted transaction's) on top of these.
    pub fn merge(&mut self, writes: WriteSet) {
        self.writes.extend(writes);
    }

    /// The staged writes.
    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }
}

impl<S: StateRead + ?Sized> StateRead for Overlay<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }
}
