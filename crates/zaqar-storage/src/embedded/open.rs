//! Opening the embedded store: the data directory, its manifest (the shard count) and the
//! shards with their tables.

use std::path::Path;
use std::sync::{Arc, Mutex};

use zaqar_core::clock::SharedClock;
use zaqar_core::error::{Error, Result};

use super::records::{
    BODIES, CLAIMS, COUNTERS, META, MSGS, NOTIFY, OUTBOX, QBYTES, QBYTES_BY_EXPIRY, QUEUES, SUBS,
    SUB_URIS, XFER_DONE,
};
use super::shard::Shard;
use super::{bytes, se, subs, DrainStop, EmbeddedStore, EmbeddedStoreConfig};

const MANIFEST: &str = "MANIFEST";

impl EmbeddedStore {
    /// Opens (or creates) the store in `cfg.path`.
    pub fn open(cfg: &EmbeddedStoreConfig, clock: SharedClock) -> Result<Arc<EmbeddedStore>> {
        let dir = &cfg.path;
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
        let shards = Self::shard_count(dir, cfg.shards)?;
        let cache = (cfg.cache_size_mb << 20) / shards;
        let mut opened = Vec::with_capacity(shards);
        for i in 0..shards {
            let shard = Shard::open(&dir.join(format!("shard-{i:02}.redb")), cache, i)?;
            // Create every table up front so read transactions always find them.
            let txn = shard.db.begin_write().map_err(se)?;
            txn.open_table(QUEUES).map_err(se)?;
            txn.open_table(COUNTERS).map_err(se)?;
            txn.open_table(MSGS).map_err(se)?;
            txn.open_table(BODIES).map_err(se)?;
            txn.open_table(CLAIMS).map_err(se)?;
            txn.open_table(OUTBOX).map_err(se)?;
            txn.open_table(XFER_DONE).map_err(se)?;
            txn.open_table(SUBS).map_err(se)?;
            txn.open_table(SUB_URIS).map_err(se)?;
            txn.open_table(QBYTES).map_err(se)?;
            txn.open_table(QBYTES_BY_EXPIRY).map_err(se)?;
            txn.open_table(META).map_err(se)?;
            bytes::initialize(&txn)?;
            {
                // Leases on notification batches belong to a process that is gone: this store
                // is not shared, so release them all.
                let mut notify = txn.open_table(NOTIFY).map_err(se)?;
                subs::release_leases(&mut notify)?;
            }
            txn.commit().map_err(se)?;
            opened.push(shard);
        }
        Ok(Arc::new(EmbeddedStore {
            drain_locks: opened.iter().map(|_| tokio::sync::Mutex::new(())).collect(),
            shards: opened,
            sub_cache: Arc::default(),
            clock,
            gc_task: Mutex::new(None),
            drain_stop: Mutex::new(DrainStop::Never),
        }))
    }

    /// The shard count is fixed when the store is created and recorded in its manifest.
    fn shard_count(dir: &Path, wanted: usize) -> Result<usize> {
        let path = dir.join(MANIFEST);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    Error::Unavailable(format!("corrupt manifest {}: {e}", path.display()))
                })?;
                let n = v["shards"]
                    .as_u64()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| {
                        Error::Unavailable(format!("corrupt manifest {}", path.display()))
                    })? as usize;
                if n != wanted {
                    tracing::warn!(
                        stored = n,
                        configured = wanted,
                        "the store was created with a different shard count; using the stored one"
                    );
                }
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let tmp = dir.join("MANIFEST.tmp");
                let text = serde_json::json!({"format": 1, "shards": wanted}).to_string();
                let write = || -> std::io::Result<()> {
                    use std::io::Write;
                    let mut f = std::fs::File::create(&tmp)?;
                    f.write_all(text.as_bytes())?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, &path)?;
                    std::fs::File::open(dir)?.sync_all()
                };
                write().map_err(|e| {
                    Error::Unavailable(format!("cannot write {}: {e}", path.display()))
                })?;
                Ok(wanted)
            }
            Err(e) => Err(Error::Unavailable(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }
}
