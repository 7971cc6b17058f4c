//! Byte accounting of the embedded store (`QBYTES`, `QBYTES_BY_EXPIRY`): per queue, the body
//! bytes of its message records, in total and by expiry second. Every write job that adds or
//! removes a record (or changes its expiry) changes them in the same transaction, so they
//! cannot drift, also across a crash. A store created before byte accounting is counted once,
//! in the transaction that opens it.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use zaqar_core::clock::Millis;
use zaqar_core::error::Result;
use zaqar_core::store::expiry_second;

use super::records::{decode, MsgRecord, BODIES, META, MSGS, QBYTES, QBYTES_BY_EXPIRY};
use super::se;

const INITIALIZED: &str = "bytes_accounting";

/// Changes to one queue's accounting collected by a write job and applied by [`Delta::apply`]
/// once the job has passed its checks (a job that refuses changes nothing).
#[derive(Debug, Default)]
pub(super) struct Delta {
    total: i64,
    by_second: BTreeMap<u64, i64>,
}

impl Delta {
    /// A record with a body of `size` bytes, expiring at `expires`, was stored.
    pub(super) fn add(&mut self, expires: Millis, size: usize) {
        self.total += size as i64;
        self.shift(expires, size as i64);
    }

    /// A record was removed (`expires` as it was stored).
    pub(super) fn remove(&mut self, expires: Millis, size: usize) {
        self.total -= size as i64;
        self.shift(expires, -(size as i64));
    }

    /// A record's expiry changed from `from` to `to` (claims extend lifetimes).
    pub(super) fn reschedule(&mut self, from: Millis, to: Millis, size: usize) {
        if expiry_second(from) != expiry_second(to) {
            self.shift(from, -(size as i64));
            self.shift(to, size as i64);
        }
    }

    fn shift(&mut self, expires: Millis, delta: i64) {
        *self.by_second.entry(expiry_second(expires)).or_default() += delta;
    }

    /// Applies the changes to queue `(p, n)`; rows that reach zero are removed.
    pub(super) fn apply(self, txn: &WriteTransaction, p: &str, n: &str) -> Result<()> {
        if self.total != 0 {
            let mut t = txn.open_table(QBYTES).map_err(se)?;
            let old = t.get((p, n)).map_err(se)?.map(|g| g.value()).unwrap_or(0);
            match add_signed(old, self.total) {
                0 => t.remove((p, n)).map_err(se)?,
                v => t.insert((p, n), v).map_err(se)?,
            };
        }
        if self.by_second.values().any(|d| *d != 0) {
            let mut t = txn.open_table(QBYTES_BY_EXPIRY).map_err(se)?;
            for (second, d) in self.by_second.into_iter().filter(|(_, d)| *d != 0) {
                let key = (p, n, second);
                let old = t.get(key).map_err(se)?.map(|g| g.value()).unwrap_or(0);
                match add_signed(old, d) {
                    0 => t.remove(key).map_err(se)?,
                    v => t.insert(key, v).map_err(se)?,
                };
            }
        }
        Ok(())
    }
}

/// Changes to several queues (the expired-data sweep).
#[derive(Debug, Default)]
pub(super) struct Ledger(HashMap<(String, String), Delta>);

impl Ledger {
    pub(super) fn queue(&mut self, p: &str, n: &str) -> &mut Delta {
        self.0.entry((p.to_string(), n.to_string())).or_default()
    }

    pub(super) fn apply(self, txn: &WriteTransaction) -> Result<()> {
        for ((p, n), d) in self.0 {
            d.apply(txn, &p, &n)?;
        }
        Ok(())
    }
}

fn add_signed(v: u64, d: i64) -> u64 {
    if d >= 0 {
        v.saturating_add(d as u64)
    } else {
        v.saturating_sub(d.unsigned_abs())
    }
}

/// Drops a queue's accounting (all of its messages are being removed).
pub(super) fn clear(txn: &WriteTransaction, p: &str, n: &str) -> Result<()> {
    txn.open_table(QBYTES)
        .map_err(se)?
        .remove((p, n))
        .map_err(se)?;
    txn.open_table(QBYTES_BY_EXPIRY)
        .map_err(se)?
        .retain_in((p, n, 0u64)..=(p, n, u64::MAX), |_, _| false)
        .map_err(se)?;
    Ok(())
}

/// The unexpired body bytes of a project's queues in one shard: each queue's total minus what
/// is filed under expiry seconds already past (a few rows: the sweep removes expired records).
pub(super) fn project_bytes(rtx: &ReadTransaction, project: &str, now: Millis) -> Result<u64> {
    let past = (now.max(0) as u64) / 1000;
    let totals = rtx.open_table(QBYTES).map_err(se)?;
    let by_expiry = rtx.open_table(QBYTES_BY_EXPIRY).map_err(se)?;
    let mut sum: u64 = 0;
    for e in totals.range((project, "")..).map_err(se)? {
        let (k, v) = e.map_err(se)?;
        let (p, n) = k.value();
        if p != project {
            break;
        }
        let mut bytes = v.value();
        for x in by_expiry.range((p, n, 0u64)..=(p, n, past)).map_err(se)? {
            let (_, gone) = x.map_err(se)?;
            bytes = bytes.saturating_sub(gone.value());
        }
        sum = sum.saturating_add(bytes);
    }
    Ok(sum)
}

/// Counts every stored message once, when the store predates byte accounting. Runs inside the
/// transaction that opens the shard, before any write job.
pub(super) fn initialize(txn: &WriteTransaction) -> Result<()> {
    let mut meta = txn.open_table(META).map_err(se)?;
    if meta.get(INITIALIZED).map_err(se)?.is_some() {
        return Ok(());
    }
    txn.open_table(QBYTES)
        .map_err(se)?
        .retain(|_, _| false)
        .map_err(se)?;
    txn.open_table(QBYTES_BY_EXPIRY)
        .map_err(se)?
        .retain(|_, _| false)
        .map_err(se)?;
    let mut ledger = Ledger::default();
    {
        let msgs = txn.open_table(MSGS).map_err(se)?;
        let bodies = txn.open_table(BODIES).map_err(se)?;
        for e in msgs.iter().map_err(se)? {
            let (k, v) = e.map_err(se)?;
            let (p, n, marker) = k.value();
            let rec: MsgRecord = decode(v.value())?;
            let size = bodies
                .get((p, n, marker))
                .map_err(se)?
                .map(|g| g.value().len())
                .unwrap_or(0);
            ledger.queue(p, n).add(rec.expires, size);
        }
    }
    ledger.apply(txn)?;
    meta.insert(INITIALIZED, 1).map_err(se)?;
    Ok(())
}
