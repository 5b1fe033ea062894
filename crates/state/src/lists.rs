//! Appending to and reading the ledger's append-only lists ([`List`]: a counter plus numbered
//! entries). Every list in state is written through [`push`], so the counter and the entries
//! never disagree, and read through [`len`] and [`entry`].

use medledger_tx::keys::List;

use crate::error::StoreError;
use crate::view::{Overlay, StateRead};

/// The number of entries of `list`.
pub fn len(view: &(impl StateRead + ?Sized), list: &List<'_>) -> Result<u64, StoreError> {
    view.get_u64(&list.count_key())
}

/// Entry `n` of `list`, if present.
pub fn entry(
    view: &(impl StateRead + ?Sized),
    list: &List<'_>,
    n: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    view.get(&list.entry_key(n))
}

/// Appends `value` to `list` and returns its index. Counters cannot overflow: every list is
/// bounded by a limit its handler checks first, or by the number of blocks.
pub fn push<S: StateRead + ?Sized>(
    st: &mut Overlay<'_, S>,
    list: &List<'_>,
    value: Vec<u8>,
) -> Result<u64, StoreError> {
    push_with(st, list, |_| value)
}

/// [`push`] of a value that holds its own index (an access event's `index`): `value` is built
/// from the index, with one read of the count.
pub fn push_with<S: StateRead + ?Sized>(
    st: &mut Overlay<'_, S>,
    list: &List<'_>,
    value: impl FnOnce(u64) -> Vec<u8>,
) -> Result<u64, StoreError> {
    let n = len(st, list)?;
    st.put(list.entry_key(n), value(n));
    st.put_u64(list.count_key(), n + 1);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn push_appends_in_order_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut st = Overlay::new(&store);
        let list = List::Study("s-1");
        assert_eq!(len(&st, &list).unwrap(), 0);
        assert_eq!(push(&mut st, &list, b"c-1".to_vec()).unwrap(), 0);
        assert_eq!(push(&mut st, &list, b"c-7".to_vec()).unwrap(), 1);
        assert_eq!(len(&st, &list).unwrap(), 2);
        assert_eq!(entry(&st, &list, 1).unwrap().as_deref(), Some(&b"c-7"[..]));
        assert_eq!(entry(&st, &list, 2).unwrap(), None);
        // Another list of the same kind is untouched.
        assert_eq!(len(&st, &List::Study("s-2")).unwrap(), 0);
    }
}
