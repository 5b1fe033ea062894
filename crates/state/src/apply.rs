//! One transaction, end to end: authenticate, check, consume the sequence, apply the message.
//!
//! The order matters and is part of the protocol:
//! 1. decoding and signature (done before, the block's unseen signatures on all cores:
//!    [`medledger_tx::SigCache::warm`]);
//! 2. chain id, then stateless checks of the message;
//! 3. the signer must be a key the ledger knows (a member, practitioner or patient; only a key
//!    recovery comes from a key not known yet), and not a retired key;
//! 4. the signer's sequence number must be exactly the next one, or, for an unordered tx, the
//!    block time within its validity window and its nonce unused ([`crate::nonces`]);
//! 5. the message is applied in its own overlay, and the sequence or nonce is consumed.
//!
//! CheckTx runs steps 1–4 against the committed state. A tx refused in steps 1–4 writes nothing. A tx of a known signer refused in step 5 writes
//! only its consumed sequence number (or nonce), so the same signed bytes can never be applied later (a
//! validator cannot replay a once-refused access log after a consent appears); one exception: a
//! LogAccess that no consent permits (`NO_PERMITTING_CONSENT`) also records the refused attempt
//! in the patient's list `refused/{patient}/…`, bounded per patient and per block
//! ([`access::record_refused`]). A tx of a key the
//! ledger does not know writes nothing unless it applies: an outsider cannot grow the state with
//! refused txs (CheckTx refuses unknown keys before the mempool; only a key recovery is signed by
//! a key not yet known, see [`unknown_signer_may_send`]).

use medledger_tx::check::check_body;
use medledger_tx::pb::tx_body::Msg;
use medledger_tx::{keys, Code, TxError, VerifiedTx};

use crate::domain::members::{signer, Signer};
use crate::domain::{
    access, claims, consent, gateway, governance, patients, practitioners, records, smart,
    BlockCtx, Event,
};
use crate::error::{ApplyError, StoreError};
use crate::nonces;
use crate::store::WriteSet;
use crate::view::{BlockState, StateRead, TxState};

/// The result of one transaction in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// 0 for success, else a [`Code`].
    pub code: u32,
    /// What happened, for people.
    pub log: String,
    /// Events to index.
    pub events: Vec<Event>,
}

impl TxOutcome {
    fn rejected(e: TxError) -> Self {
        TxOutcome {
            code: e.code.value(),
            log: e.message,
            events: Vec::new(),
        }
    }
}

/// Checks everything about `tx` that does not need state, and returns its message.
pub fn check_stateless<'t>(tx: &'t VerifiedTx, chain_id: &str) -> Result<&'t Msg, TxError> {
    if tx.body().chain_id != chain_id {
        return Err(TxError::new(
            Code::WrongChainId,
            format!(
                "tx is for chain {:?}; this ledger is {chain_id:?}",
                tx.body().chain_id
            ),
        ));
    }
    check_body(tx.body())
}

/// Checks that `sequence` is exactly `expected`, the signer's next sequence number.
pub fn check_sequence(sequence: u64, expected: u64) -> Result<(), TxError> {
    if sequence < expected {
        return Err(TxError::new(
            Code::SequenceReused,
            format!(
                "sequence {sequence} was already used; the signer's next sequence is {expected}"
            ),
        ));
    }
    if sequence > expected {
        return Err(TxError::new(
            Code::SequenceGap,
            format!("sequence {sequence} skips ahead; the signer's next sequence is {expected}"),
        ));
    }
    Ok(())
}

/// Applies an (already verified) transaction to the block state. `Err` only on storage failure.
pub fn deliver(
    block: &mut BlockState<'_>,
    tx: Result<VerifiedTx, TxError>,
    ctx: &BlockCtx,
) -> Result<TxOutcome, StoreError> {
    let tx = match tx {
        Ok(tx) => tx,
        Err(e) => return Ok(TxOutcome::rejected(e)),
    };
    let msg = match check_stateless(&tx, &ctx.chain_id) {
        Ok(msg) => msg,
        Err(e) => return Ok(TxOutcome::rejected(e)),
    };
    let who = match signer(block, tx.signer()) {
        Ok(who) => who,
        // A retired key signs nothing and writes nothing.
        Err(ApplyError::Rejected(e)) => return Ok(TxOutcome::rejected(e)),
        Err(ApplyError::Store(e)) => return Err(e),
    };
    let known = !matches!(who, Signer::Unknown);
    if !known && !unknown_signer_may_send(msg) {
        return Ok(TxOutcome::rejected(unknown_signer()));
    }
    let replay = match &tx.body().unordered {
        None => {
            let key = keys::sequence(tx.signer());
            let expected = block.get_u64(&key)?;
            if let Err(e) = check_sequence(tx.body().sequence, expected) {
                return Ok(TxOutcome::rejected(e));
            }
            Replay::Sequence { key, expected }
        }
        Some(u) => match nonces::check(block, tx.signer(), u, Some(ctx.time))? {
            Ok(key) => Replay::Nonce {
                key,
                valid_until: u.valid_until,
            },
            Err(e) => return Ok(TxOutcome::rejected(e)),
        },
    };
    // The signer, kept for a refused LogAccess's record (only a LogAccess clones it).
    let signer_again = match msg {
        Msg::LogAccess(_) => who.clone(),
        _ => Signer::Unknown,
    };
    match apply_msg(block, &tx, who, msg, ctx) {
        Ok((writes, events)) => {
            replay.consume(block, ctx)?;
            block.merge(writes);
            Ok(TxOutcome {
                code: 0,
                log: String::new(),
                events,
            })
        }
        Err(ApplyError::Rejected(e)) => {
            let mut events = Vec::new();
            if known {
                replay.consume(block, ctx)?;
                if let Msg::LogAccess(m) = msg {
                    events.extend(access::record_refused(block, &signer_again, m, &e, ctx)?);
                }
            }
            Ok(TxOutcome {
                events,
                ..TxOutcome::rejected(e)
            })
        }
        Err(ApplyError::Store(e)) => Err(e),
    }
}

/// What keeps a tx from being applied twice, consumed once it is applied or refused by its
/// rules: its signer's sequence number, or its unordered nonce.
enum Replay {
    Sequence { key: Vec<u8>, expected: u64 },
    Nonce { key: Vec<u8>, valid_until: u64 },
}

impl Replay {
    fn consume(self, block: &mut BlockState<'_>, ctx: &BlockCtx) -> Result<(), StoreError> {
        match self {
            // Sequences are bounded by the number of txs a key ever signs; overflow-checks
            // guard the rest.
            Replay::Sequence { key, expected } => {
                block.put_u64(key, expected + 1);
                Ok(())
            }
            Replay::Nonce { key, valid_until } => {
                nonces::remember(block, key, valid_until, ctx.time)
            }
        }
    }
}

/// The only message a key the ledger does not know may send: a key recovery, signed by the new
/// key it names. Everything else from an unknown key is refused by CheckTx and by the block.
pub fn unknown_signer_may_send(msg: &Msg) -> bool {
    matches!(msg, Msg::RecoverPatientKey(_))
}

/// The refusal of a tx from a key the ledger does not know.
pub fn unknown_signer() -> TxError {
    TxError::new(
        Code::UnknownSigner,
        "this key belongs to no member, practitioner or patient; a patient is enrolled by a \
         member (RegisterPatient signed by the member), a practitioner registered by their member",
    )
}

/// Applies one message: reads through `view`, returns the writes and events, or the refusal.
pub fn apply_msg(
    view: &BlockState<'_>,
    tx: &VerifiedTx,
    who: Signer,
    msg: &Msg,
    ctx: &BlockCtx,
) -> Result<(WriteSet, Vec<Event>), ApplyError> {
    let mut st = TxState::new(view);
    let events = match msg {
        Msg::RegisterPatient(m) => patients::register(&mut st, &who, m, ctx)?,
        Msg::SetGuardians(m) => patients::set_guardians(&mut st, &who, m, ctx)?,
        Msg::RotatePatientKey(m) => patients::rotate(&mut st, &who, m, ctx)?,
        Msg::RecoverPatientKey(m) => patients::recover(&mut st, &who, tx.signer(), m, ctx)?,
        Msg::RegisterPatientBoxKey(m) => patients::register_box_key(&mut st, &who, m, ctx)?,
        Msg::GrantConsent(m) => consent::grant(&mut st, &who, m, ctx)?,
        Msg::RevokeConsent(m) => consent::revoke(&mut st, &who, m, ctx)?,
        Msg::LogAccess(m) => access::log(&mut st, &who, m, ctx)?,
        Msg::LogBreakGlass(m) => access::break_glass(&mut st, &who, m, ctx)?,
        Msg::ReviewBreakGlass(m) => access::review(&mut st, &who, m, ctx)?,
        Msg::ReportAccess(m) => access::report(&mut st, &who, m, ctx)?,
        Msg::ReviewReport(m) => access::review_report(&mut st, &who, m, ctx)?,
        Msg::RegisterPractitioner(m) => practitioners::register(&mut st, &who, m, ctx)?,
        Msg::SetPractitionerStatus(m) => practitioners::set_status(&mut st, &who, m, ctx)?,
        Msg::AnchorRecord(m) => records::anchor(&mut st, &who, m, ctx)?,
        Msg::EraseRecord(m) => records::erase(&mut st, &who, m, ctx)?,
        Msg::ConfirmErasure(m) => records::confirm_erasure(&mut st, &who, m, ctx)?,
        Msg::SetGateway(m) => gateway::set(&mut st, &who, tx.signer(), m, ctx)?,
        Msg::RegisterSmartClient(m) => smart::register(&mut st, &who, m, ctx)?,
        Msg::RevokeSmartClient(m) => smart::revoke(&mut st, &who, m, ctx)?,
        Msg::SubmitProposal(m) => governance::submit(&mut st, &who, m, ctx)?,
        Msg::VoteProposal(m) => governance::vote(&mut st, &who, m, ctx)?,
        Msg::PublishPolicy(m) => claims::publish_policy(&mut st, &who, m, ctx)?,
        Msg::SubmitClaim(m) => claims::submit(&mut st, &who, m, ctx)?,
        Msg::DecideClaim(m) => claims::decide(&mut st, &who, m, ctx)?,
        Msg::PayClaim(m) => claims::pay(&mut st, &who, m, ctx)?,
        Msg::AppealClaim(m) => claims::appeal(&mut st, &who, m, ctx)?,
        Msg::EnrolCoverage(m) => claims::enrol(&mut st, &who, m, ctx)?,
        Msg::EndCoverage(m) => claims::end_coverage(&mut st, &who, m, ctx)?,
    };
    Ok((st.into_writes(), events))
}
