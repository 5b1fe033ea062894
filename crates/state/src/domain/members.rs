//! Consortium members and key ownership.

use medledger_tx::pb::{key_owner::Owner, KeyOwner, Member, Practitioner};
use medledger_tx::{keys, Code, TxError};

use crate::error::ApplyError;
use crate::view::StateRead;

/// Who holds the key that signed a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Signer {
    /// A member's admin key.
    Member(String),
    /// A patient's key.
    Patient(String),
    /// A practitioner's key (whatever their status: handlers decide what they may still do).
    Practitioner(Box<Practitioner>),
    /// A key the ledger does not know.
    Unknown,
}

/// Resolves the owner of `key`. A retired member admin key (rotated away, or of a removed
/// member) is refused outright: it must sign nothing again, not even a patient registration.
pub fn signer(view: &impl StateRead, key: &[u8; 32]) -> Result<Signer, ApplyError> {
    let owner: Option<KeyOwner> = view.get_msg(&keys::key_owner(key))?;
    Ok(match owner.and_then(|o| o.owner) {
        Some(Owner::MemberId(id)) => Signer::Member(id),
        Some(Owner::PatientId(id)) => Signer::Patient(id),
        Some(Owner::PractitionerDid(did)) => match view.get_msg::<Practitioner>(&keys::practitioner(&did))? {
            Some(p) => Signer::Practitioner(Box::new(p)),
            None => Signer::Unknown,
        },
        Some(Owner::RetiredMemberKey(id)) => {
            return Err(TxError::new(
                Code::UnknownSigner,
                format!("this key was an admin key of member {id} and was retired by governance; it signs nothing"),
            )
            .into())
        }
        Some(Owner::RetiredPatientKey(id)) => {
            return Err(TxError::new(
                Code::KeyRetired,
                format!("this key was patient {id}'s and was replaced by rotation or recovery; it signs nothing"),
            )
            .into())
        }
        None => Signer::Unknown,
    })
}

/// The member with `id`, or [`Code::UnknownMember`].
pub fn require_member(view: &impl StateRead, id: &str) -> Result<Member, ApplyError> {
    view.get_msg(&keys::member(id))?.ok_or_else(|| {
        TxError::new(
            Code::UnknownMember,
            format!("no member {id:?}; see `medledger query member`"),
        )
        .into()
    })
}

/// The signer as a member admin, or a rejection saying who may send `what`.
pub fn require_member_signer(signer: &Signer, what: &str) -> Result<String, ApplyError> {
    match signer {
        Signer::Member(id) => Ok(id.clone()),
        Signer::Patient(id) => Err(TxError::new(
            Code::NotAuthorized,
            format!("{what} must be signed by a member's key; {id} is a patient"),
        )
        .into()),
        Signer::Practitioner(p) => Err(TxError::new(
            Code::NotAuthorized,
            format!(
                "{what} must be signed by a member's admin key; {} is a practitioner",
                p.did
            ),
        )
        .into()),
        Signer::Unknown => Err(TxError::new(
            Code::UnknownSigner,
            format!("{what} must be signed by a member's key; this key belongs to no member"),
        )
        .into()),
    }
}
