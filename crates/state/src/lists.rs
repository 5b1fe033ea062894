//! Appending to and reading the ledger's append-only lists ([`List`]: a counter plus numbered
//! entries). Every list in state is written through [`push`], so the counter and the entries
//! never disagree, and read through [`len`] and [`entry`].

use medledger_tx::digest::ListDigest;
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
    let value = value(n);
    if let Some(key) = list.digest_key() {
        // The digest follows the count: entry `n` extends the chain over entries `0..n`. A list
        // that already had entries when its digest was introduced has none, and keeps none
        // (verifiers fall back to one proof per entry, docs/queries.md "List digests").
        let before = match st.get(&key)? {
            Some(bytes) => Some(
                ListDigest::decode(&bytes)
                    .filter(|d| d.count == n)
                    .ok_or_else(|| StoreError::Corrupt {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        reason: format!("not the digest of the list's {n} entries"),
                    })?,
            ),
            None if n == 0 => Some(ListDigest::EMPTY),
            None => None,
        };
        if let Some(before) = before {
            let after = before
                .push(list, &value)
                .ok_or_else(|| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&list.entry_key(n)).into_owned(),
                    reason: "the entry does not decode".into(),
                })?;
            st.put(key, after.encode());
        }
    }
    st.put(list.entry_key(n), value);
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
        // A study's list keeps no digest.
        assert_eq!(list.digest_key(), None);
        // Another list of the same kind is untouched.
        assert_eq!(len(&st, &List::Study("s-2")).unwrap(), 0);
    }

    #[test]
    fn a_patients_lists_keep_the_digest_of_their_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut st = Overlay::new(&store);
        let list = List::PatientRecords("pt-1");
        push(&mut st, &list, b"lab-1".to_vec()).unwrap();
        push(&mut st, &list, b"lab-2".to_vec()).unwrap();
        let stored = st.get(&list.digest_key().unwrap()).unwrap().unwrap();
        let expected = ListDigest::of(&list, [&b"lab-1"[..], &b"lab-2"[..]]).unwrap();
        assert_eq!(ListDigest::decode(&stored), Some(expected));
        assert_eq!(expected.count, 2);
    }

    #[test]
    fn a_list_older_than_its_digest_keeps_none_and_a_wrong_digest_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut st = Overlay::new(&store);
        let list = List::PatientRecords("pt-1");
        // Entries written before digests existed: a count and no digest.
        st.put(list.entry_key(0), b"lab-0".to_vec());
        st.put_u64(list.count_key(), 1);
        push(&mut st, &list, b"lab-1".to_vec()).unwrap();
        assert_eq!(st.get(&list.digest_key().unwrap()).unwrap(), None);
        // A digest that does not count the entries is refused, not extended.
        let other = List::PatientRecords("pt-2");
        st.put(other.digest_key().unwrap(), ListDigest::EMPTY.encode());
        st.put_u64(other.count_key(), 3);
        assert!(matches!(
            push(&mut st, &other, b"lab-9".to_vec()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
