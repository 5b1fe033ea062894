//! `POST /admin/reshare` (`medledger gateway reshare`): records this gateway holds whole (stored
//! before threshold custody, anchored without holders) move to threshold custody (issue 25
//! point 8; docs/vault.md, "Records stored before threshold custody").
//!
//! Per record, each step durable before the next, so that a crash anywhere leaves the record
//! readable under one scheme or the other and a rerun finishes it (the ledger's anchor says which
//! scheme holds):
//!
//! 1. **Stage.** Open the record with its whole key, choose the holders as a `PUT` does, seal it
//!    again under a fresh split key, and write the new sealed bytes, this gateway's share
//!    (KEK-wrapped) and the new metadata under `<data>/reshare/` (metadata last). The record
//!    still reads whole.
//! 2. **Anchor.** The staged custody goes on chain: an `AnchorRecord` for the same id, signed by
//!    the member's admin key, which the ledger accepts once for a record anchored without
//!    holders (docs/rules.md, "Threshold custody").
//! 3. **Swap.** The old sealed bytes and whole key are copied to `reshare/` (kept until the
//!    holders have their shares), the live whole key is destroyed (zeros, fsync, unlink), and the
//!    staged record takes its place in the store.
//! 4. **Replicate, then destroy.** The holders get their replicas as after a `PUT`; once every
//!    one acknowledged, the kept whole key is destroyed (zeros, fsync, unlink) and the old sealed
//!    bytes removed. A holder that did not acknowledge leaves the record `pending`: the
//!    background loop keeps retrying, and the next reshare destroys the whole key.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use medledger_tx::check::key_id_for_commitment;
use medledger_tx::keys;
use medledger_tx::pb::RecordAnchor;
use medledger_tx::Code;
use medledger_vault::kek::{self, WrappedKey};
use medledger_vault::record::{self, RecordMeta, SealedRecord};
use serde::{Deserialize, Serialize};

use super::json;
use crate::auth::{Authed, Requester, Subject};
use crate::error::ApiError;
use crate::state::State;
use crate::store::{write_durable, RecordMetaFile, RecordState};

/// Records one call looks at when the request names no `limit`.
pub const DEFAULT_RESHARE_LIMIT: u32 = 16;
/// Most records one call looks at (each waits for a block): the CLI calls again while `more`.
pub const MAX_RESHARE_LIMIT: u32 = 64;

/// One reshare at a time per process (two would race on the same staging files).
static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `POST /admin/reshare`'s body (all optional; an empty body is `{}`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReshareRequest {
    /// Report what would move; change nothing.
    #[serde(default)]
    dry_run: bool,
    /// Records to look at in this call (1..=64, default 16).
    #[serde(default)]
    limit: Option<u32>,
}

/// `POST /admin/reshare`'s answer.
#[derive(Debug, Serialize)]
pub(crate) struct ReshareAnswer {
    dry_run: bool,
    /// The consortium's custody the records move to.
    holders: u32,
    threshold: u32,
    moved: usize,
    pending: usize,
    skipped: usize,
    failed: usize,
    /// More records wait than this call looked at: call again.
    more: bool,
    records: Vec<ReshareOutcome>,
}

/// What happened to one record.
#[derive(Debug, Serialize)]
pub(crate) struct ReshareOutcome {
    record_id: String,
    /// `moved`, `would_move` (dry run), `pending` (anchored under threshold custody; a holder has
    /// not acknowledged its share yet, so the whole key is kept), `skipped` or `failed`.
    outcome: &'static str,
    /// Why (skipped, pending, failed).
    #[serde(skip_serializing_if = "String::is_empty")]
    reason: String,
    /// The holders, once chosen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    holders: Vec<String>,
}

impl ReshareOutcome {
    fn new(id: &str, outcome: &'static str, reason: impl Into<String>) -> ReshareOutcome {
        ReshareOutcome {
            record_id: id.to_string(),
            outcome,
            reason: reason.into(),
            holders: Vec::new(),
        }
    }
}

/// `POST /admin/reshare`: the member's admin key only.
pub(crate) async fn reshare(
    AxState(st): AxState<Arc<State>>,
    Authed { who, body }: Authed,
) -> Response {
    match st.reshare(&who, &body).await {
        Ok(a) => (StatusCode::OK, Json(a)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The staging files of one record under `<data>/reshare/`.
struct Staged {
    dir: PathBuf,
    stem: String,
}

impl Staged {
    fn of(st: &State, id: &str) -> Staged {
        Staged {
            dir: st.data_dir.join("reshare"),
            stem: hex::encode(id.as_bytes()),
        }
    }

    fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.stem))
    }

    /// The staged metadata (written last: present means the new record is complete).
    fn meta(&self) -> io::Result<Option<RecordMetaFile>> {
        match fs::read(self.path("json")) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn exists(&self, ext: &str) -> bool {
        self.path(ext).exists()
    }

    fn create_dir(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    /// Removes the staged new record (after the swap, or when its anchor was refused).
    fn discard_new(&self) -> io::Result<()> {
        for ext in ["json", "share", "sealed"] {
            shred(&self.path(ext))?;
        }
        self.sync_dir()
    }

    /// Destroys everything staged: the kept whole key and the old sealed bytes too.
    fn destroy_all(&self) -> io::Result<()> {
        for ext in ["oldkey", "json", "share", "sealed", "oldsealed"] {
            shred(&self.path(ext))?;
        }
        self.sync_dir()
    }

    fn sync_dir(&self) -> io::Result<()> {
        match fs::File::open(&self.dir) {
            Ok(d) => d.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Overwrites `path` with zeros, fsyncs and unlinks it (nothing there: nothing to do).
fn shred(path: &std::path::Path) -> io::Result<()> {
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    {
        let mut f = fs::OpenOptions::new().write(true).open(path)?;
        f.write_all(&vec![0u8; usize::try_from(len).unwrap_or(0)])?;
        f.sync_all()?;
    }
    fs::remove_file(path)
}

/// Destroys whatever a reshare staged for `id` (its erasure: the kept whole key must go too).
pub(crate) fn destroy_staged(st: &State, id: &str) -> io::Result<()> {
    Staged::of(st, id).destroy_all()
}

impl State {
    /// Moves up to `limit` whole-key records to threshold custody (see the module's doc).
    pub(crate) async fn reshare(
        &self,
        who: &Requester,
        body: &[u8],
    ) -> Result<ReshareAnswer, ApiError> {
        if !matches!(&who.subject, Subject::Member(m) if *m == self.member_id) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "only {}'s admin key moves its records to threshold custody",
                    self.member_id
                ),
            ));
        }
        let req: ReshareRequest = if body.iter().all(u8::is_ascii_whitespace) {
            ReshareRequest::default()
        } else {
            json(body)?
        };
        let limit = req.limit.unwrap_or(DEFAULT_RESHARE_LIMIT);
        if !(1..=MAX_RESHARE_LIMIT).contains(&limit) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("limit is 1 to {MAX_RESHARE_LIMIT}"),
            ));
        }
        let Ok(_running) = RUNNING.try_lock() else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "a reshare is running at this gateway; try again when it ends",
            ));
        };
        let Some((r, t)) = self.custody_params().await? else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "threshold custody is off (no params/custody on the ledger): nothing to move \
                 records to; pass a SetCustody proposal first",
            ));
        };
        let mut candidates: Vec<RecordMetaFile> = self
            .store
            .all()?
            .into_iter()
            .filter(|m| {
                let staged = Staged::of(self, &m.record_id);
                let erased = matches!(m.state, RecordState::Erased { .. });
                (m.custody.is_none() && !erased)
                    || staged.exists("oldkey")
                    || (erased && staged.exists("json"))
            })
            .collect();
        candidates.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        let more = candidates.len() > limit as usize;
        candidates.truncate(limit as usize);
        let mut records = Vec::new();
        for meta in candidates {
            let id = meta.record_id.clone();
            let outcome = match self.reshare_one(meta, (r, t), req.dry_run).await {
                Ok(o) => o,
                Err(e) => ReshareOutcome::new(&id, "failed", e.message()),
            };
            records.push(outcome);
        }
        let count = |o: &str| records.iter().filter(|r| r.outcome == o).count();
        Ok(ReshareAnswer {
            dry_run: req.dry_run,
            holders: u32::from(r),
            threshold: u32::from(t),
            moved: count("moved") + count("would_move"),
            pending: count("pending"),
            skipped: count("skipped"),
            failed: count("failed"),
            more,
            records,
        })
    }

    /// One record through the steps that remain for it.
    async fn reshare_one(
        &self,
        meta: RecordMetaFile,
        (r, t): (u8, u8),
        dry_run: bool,
    ) -> Result<ReshareOutcome, ApiError> {
        let id = meta.record_id.clone();
        let staged = Staged::of(self, &id);
        let skipped = |why: String| -> Result<ReshareOutcome, ApiError> {
            Ok(ReshareOutcome::new(&id, "skipped", why))
        };
        if let RecordState::Erased { .. } = meta.state {
            if !dry_run {
                staged.destroy_all()?;
            }
            return skipped("erased".into());
        }
        if meta.state == RecordState::Stored {
            return skipped("not anchored yet (it awaits its anchor)".into());
        }
        if meta.custody.is_some() {
            // Swapped before: only the holders' acknowledgements and the whole key's
            // destruction remain.
            if dry_run {
                return Ok(ReshareOutcome::new(
                    &id,
                    "pending",
                    "swapped; run without --dry-run",
                ));
            }
            return self.finish(&id, &staged).await;
        }
        let anchor: RecordAnchor = self
            .node
            .read_msg_newest(&keys::record(&id))
            .await?
            .ok_or_else(|| ApiError::internal(format!("record {id} has no anchor on chain")))?;
        if anchor.erased_height != 0 {
            if !dry_run {
                staged.destroy_all()?;
            }
            return skipped(format!("erased at height {}", anchor.erased_height));
        }
        if anchor.custodian != self.member_id {
            return skipped(format!("held by {}", anchor.custodian));
        }
        if !anchor.holders.is_empty() {
            // The staged custody was anchored; the swap did not finish.
            let matches = staged
                .meta()?
                .is_some_and(|s| s.content_hash == hex::encode(&anchor.content_hash));
            if !matches {
                return Ok(ReshareOutcome::new(
                    &id,
                    "failed",
                    "the ledger lists holders for this record, but no matching reshare is \
                     staged here",
                ));
            }
            if dry_run {
                return Ok(ReshareOutcome::new(
                    &id,
                    "pending",
                    "anchored; the swap remains",
                ));
            }
            return self.swap_and_finish(&id, &staged, &anchor).await;
        }
        if hex::encode(&anchor.content_hash) != meta.content_hash {
            return Ok(ReshareOutcome::new(
                &id,
                "failed",
                "the anchored content hash is not the stored record's",
            ));
        }
        if dry_run {
            return Ok(ReshareOutcome::new(&id, "would_move", ""));
        }
        let new_meta = match staged.meta()? {
            Some(m) => m,
            None => self.stage(&meta, &staged, r, t).await?,
        };
        let committed = self.submit(Self::anchor_msg(&new_meta)?).await?;
        let anchor: Option<RecordAnchor> = self.node.read_msg_newest(&keys::record(&id)).await?;
        let landed = anchor.as_ref().filter(|a| {
            hex::encode(&a.content_hash) == new_meta.content_hash && !a.holders.is_empty()
        });
        let Some(anchor) = landed else {
            // Refused (custody changed since it was staged, or the record was erased): the
            // record stays whole; the next reshare stages it afresh.
            staged.discard_new()?;
            return Ok(ReshareOutcome::new(
                &id,
                "failed",
                format!(
                    "the ledger refused the new anchor: {} ({}): {}",
                    Code::name_of(committed.code),
                    committed.code,
                    committed.log
                ),
            ));
        };
        self.swap_and_finish(&id, &staged, anchor).await
    }

    /// Step 1: the record sealed again under a split key, staged (metadata last).
    async fn stage(
        &self,
        meta: &RecordMetaFile,
        staged: &Staged,
        r: u8,
        t: u8,
    ) -> Result<RecordMetaFile, ApiError> {
        let id = &meta.record_id;
        let wrapped = self
            .store
            .wrapped_key(id)?
            .ok_or_else(|| ApiError::gone(id, 0))?;
        let wrapped = WrappedKey::decode(&wrapped).map_err(ApiError::internal)?;
        let key = kek::unwrap(&self.kek, id, &wrapped).map_err(ApiError::internal)?;
        let sealed =
            SealedRecord::decode(&self.store.sealed(id).await?).map_err(ApiError::internal)?;
        let rmeta = RecordMeta {
            record_id: id,
            patient_id: &meta.patient_id,
            resource_type: &meta.resource_type,
            version: meta.version,
        };
        let plaintext = zeroize::Zeroizing::new(
            record::open(&rmeta, &sealed, &key).map_err(ApiError::internal)?,
        );
        let holders = self.choose_holders(id, r).await?;
        let s = self.seal_for_holders(&rmeta, &plaintext, &holders, t)?;
        let bytes = s.sealed.encode();
        let new_meta = RecordMetaFile {
            content_hash: hex::encode(record::content_hash(&s.sealed)),
            size: bytes.len() as u64,
            key_id: key_id_for_commitment(s.sealed.commitment()),
            custody: Some(s.custody),
            ..meta.clone()
        };
        staged.create_dir()?;
        write_durable(&staged.path("sealed"), &bytes)?;
        write_durable(&staged.path("share"), &s.own_wrapped)?;
        let json = serde_json::to_vec_pretty(&new_meta).map_err(ApiError::internal)?;
        write_durable(&staged.path("json"), &json)?;
        Ok(new_meta)
    }

    /// Step 3 (the new custody is anchored): the old record kept aside, the live whole key
    /// destroyed, the staged record in its place; then step 4.
    async fn swap_and_finish(
        &self,
        id: &str,
        staged: &Staged,
        anchor: &RecordAnchor,
    ) -> Result<ReshareOutcome, ApiError> {
        let new_meta = staged.meta()?.ok_or_else(|| {
            ApiError::internal(format!("record {id}: the staged reshare is gone"))
        })?;
        if !staged.exists("oldkey") {
            // Old sealed bytes first, the whole key last: the key's copy present means both are.
            if let Some(old_key) = self.store.wrapped_key(id)? {
                write_durable(&staged.path("oldsealed"), &self.store.sealed(id).await?)?;
                write_durable(&staged.path("oldkey"), &old_key)?;
            }
        }
        self.store.destroy_key(id)?;
        let sealed = fs::read(staged.path("sealed"))?;
        let share = fs::read(staged.path("share"))?;
        self.store
            .put(
                &RecordMetaFile {
                    state: RecordState::Anchored {
                        height: anchor.anchored_height,
                    },
                    ..new_meta
                },
                &sealed,
                &share,
            )
            .await?;
        staged.discard_new()?;
        self.finish(id, staged).await
    }

    /// Step 4: replicas to the holders; the kept whole key destroyed once all acknowledged.
    async fn finish(&self, id: &str, staged: &Staged) -> Result<ReshareOutcome, ApiError> {
        let left = self.replicate(id).await?;
        let holders = self
            .store
            .meta(id)?
            .and_then(|m| m.custody)
            .map(|c| c.holders)
            .unwrap_or_default();
        if left > 0 {
            let mut o = ReshareOutcome::new(
                id,
                "pending",
                format!(
                    "{left} holder(s) have not acknowledged their share yet; the whole key is \
                     kept until they do (retried in the background; run reshare again)"
                ),
            );
            o.holders = holders;
            return Ok(o);
        }
        staged.destroy_all()?;
        let mut o = ReshareOutcome::new(id, "moved", "");
        o.holders = holders;
        Ok(o)
    }
}
