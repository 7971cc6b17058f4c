//! The Lua scripts of the Redis store. Each script works on one queue: `KEYS[1]` is the queue
//! record and every other key it touches is derived from it, so they share its hash slot and the
//! script is atomic on one shard. Scripts are sent with EVALSHA and loaded on NOSCRIPT by
//! [`redis::Script`].
//!
//! Per-queue keys (`P` is `KEYS[1]` without its final `q`):
//! - `P q`      hash: `c` created, `v` metadata version, `md` metadata JSON, `ix` = indexed
//! - `P ctr`    last marker handed out (INCRBY)
//! - `P msgs`   hash marker → message record (MessagePack array, see `Record` in `records.rs`)
//! - `P all`    zset marker→marker: every stored message
//! - `P exp`    zset marker→expiry: for expiry and reclamation
//! - `P free`   zset marker→marker: neither claimed nor delayed
//! - `P clm`    zset marker→claim expiry: claimed (possibly lapsed) messages
//! - `P dly`    zset marker→delay expiry: delayed (possibly due) messages
//! - `P c:<claim>` hash: `t` ttl, `u` updated, `e` expires, `m` comma-separated markers
//! - `P cex`    zset claim id→expiry
//! - `P obt`/`P obp`/`P obl` hashes transfer id → target / payload / lease (outbox)
//! - `P xd`     hash transfer id → time applied (done-markers of incoming transfers)
//! - `P subs`   hash subscription id → record (MessagePack array, see `SUB_*`)
//! - `P sids`   zset (scores 0) of subscription ids: lexical = creation order
//! - `P suri`   hash subscriber URI → subscription id; `P sctr` the id counter
//! - `P nq`     zset seq→seq: pending notification batches, oldest first; `P nctr` their counter
//! - `P nbm`    hash seq → {first marker, {message record}...} (copies of the posted messages)
//! - `P nbs`    hash seq → {pending subscription ids, those unconfirmed at posting time}
//! - `P nbl`    hash seq → lease expiry (absent: never leased)
//! - `P sz`     hash marker → body bytes (byte accounting; absent for messages stored before it)
//! - `P by`     body bytes of every message in `sz` (expired-but-unreaped included)
//! - `P bx`     hash expiry second → body bytes of the messages expiring in it (rows at 0 go)
//! - `P bxs`    zset second→second: the seconds present in `bx`, to sum those already past
//!
//! Every message is in `msgs`, `all` and `exp` and in exactly one of `free`, `clm`, `dly`.
//! Byte accounting (`sz`, `by`, `bx`, `bxs`) changes only in `append` and `drop_many` (and
//! `bytes_moved` when a claim extends a message's life), in the script that stores or removes
//! the message.
//! Entries of `clm` and `dly` whose score has passed are moved to `free` by `settle` at the start
//! of the scripts that take messages; lapsed claims and expired messages are filtered by every
//! read. Records are read and written in batches (one HMGET / HSET per step, not per message).

mod claims;
mod messages;
mod moves;
mod prelude;
mod queues;
mod subs;

use redis::Script;

use claims::{CLAIM, GET_CLAIM, RELEASE, RENEW};
use messages::{DELETE_BULK, DELETE_ONE, GET, LIST, POP, POST, STATS};
use moves::{OUTBOX_APPLY, OUTBOX_DONE, OUTBOX_LEASE, REDRIVE};
use prelude::PRELUDE;
use queues::{
    BYTES, CREATE_QUEUE, DELETE_QUEUE, MARK_INDEXED, PURGE, REPLACE_METADATA, SWEEP, UNMARK_INDEXED,
};
use subs::{
    INDEX_REMOVE_IF_OLD, NOTIFY_FINISH, NOTIFY_LEASE, NOTIFY_RENEW, SUB_CONFIRM, SUB_CREATE,
    SUB_DELETE, SUB_FORGET, SUB_GET, SUB_LIST, SUB_PURGE, SUB_SWEEP, SUB_UPDATE,
};

/// Every script of the store, compiled once (their SHA1s are computed here).
pub(crate) struct Scripts {
    pub create_queue: Script,
    pub mark_indexed: Script,
    pub unmark_indexed: Script,
    pub replace_metadata: Script,
    pub delete_queue: Script,
    pub purge: Script,
    pub post: Script,
    pub list: Script,
    pub get: Script,
    pub delete_bulk: Script,
    pub delete_one: Script,
    pub pop: Script,
    pub stats: Script,
    pub claim: Script,
    pub get_claim: Script,
    pub renew: Script,
    pub release: Script,
    pub redrive: Script,
    pub outbox_lease: Script,
    pub outbox_apply: Script,
    pub outbox_done: Script,
    pub sweep: Script,
    pub bytes: Script,
    pub sub_create: Script,
    pub sub_list: Script,
    pub sub_get: Script,
    pub sub_update: Script,
    pub sub_delete: Script,
    pub sub_confirm: Script,
    pub sub_purge: Script,
    pub sub_sweep: Script,
    pub sub_forget: Script,
    pub notify_lease: Script,
    pub notify_renew: Script,
    pub notify_finish: Script,
    pub index_remove_if_old: Script,
}

fn s(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            create_queue: s(CREATE_QUEUE),
            mark_indexed: s(MARK_INDEXED),
            unmark_indexed: s(UNMARK_INDEXED),
            replace_metadata: s(REPLACE_METADATA),
            delete_queue: s(DELETE_QUEUE),
            purge: s(PURGE),
            post: s(POST),
            list: s(LIST),
            get: s(GET),
            delete_bulk: s(DELETE_BULK),
            delete_one: s(DELETE_ONE),
            pop: s(POP),
            stats: s(STATS),
            claim: s(CLAIM),
            get_claim: s(GET_CLAIM),
            renew: s(RENEW),
            release: s(RELEASE),
            redrive: s(REDRIVE),
            outbox_lease: s(OUTBOX_LEASE),
            outbox_apply: s(OUTBOX_APPLY),
            outbox_done: s(OUTBOX_DONE),
            sweep: s(SWEEP),
            bytes: s(BYTES),
            sub_create: s(SUB_CREATE),
            sub_list: s(SUB_LIST),
            sub_get: s(SUB_GET),
            sub_update: s(SUB_UPDATE),
            sub_delete: s(SUB_DELETE),
            sub_confirm: s(SUB_CONFIRM),
            sub_purge: s(SUB_PURGE),
            sub_sweep: s(SUB_SWEEP),
            sub_forget: s(SUB_FORGET),
            notify_lease: s(NOTIFY_LEASE),
            notify_renew: s(NOTIFY_RENEW),
            notify_finish: s(NOTIFY_FINISH),
            index_remove_if_old: Script::new(INDEX_REMOVE_IF_OLD),
        }
    }
}
