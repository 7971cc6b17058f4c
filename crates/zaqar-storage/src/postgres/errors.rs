//! How database failures of the PostgreSQL store become the service's errors.

use zaqar_core::error::Error;

const UNREACHABLE: &str = "The message store (PostgreSQL) is unreachable or overloaded: no \
    database connection could be obtained in time. Please try again in a few seconds.";
const CONNECTION_LOST: &str =
    "The connection to the message store (PostgreSQL) was lost. Please try again in a few seconds.";
const FAILED: &str =
    "The storage backend failed to complete the operation. Please try again in a few seconds.";

/// Whether PostgreSQL rolled the transaction back for a conflict with a concurrent one
/// (serialization failure or deadlock); trying again may succeed.
pub(super) fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if matches!(d.code().as_deref(), Some("40001") | Some("40P01")))
}

/// Maps a database failure to the service's error: 503 with a description that names the
/// kind of failure but never the server's address, credentials or the data involved.
pub(super) fn db_err(e: sqlx::Error) -> Error {
    use sqlx::Error as E;
    match &e {
        E::PoolTimedOut => {
            tracing::warn!("PostgreSQL: no connection available within the acquire timeout");
            Error::Unavailable(UNREACHABLE.into())
        }
        E::PoolClosed => Error::Unavailable("The storage backend is shutting down.".into()),
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => {
            tracing::warn!(error = %e, "PostgreSQL connection failure");
            Error::Unavailable(CONNECTION_LOST.into())
        }
        E::Database(d) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            match code.as_str() {
                // A text value with a NUL character: PostgreSQL cannot store it.
                "22021" => Error::invalid(
                    "A name or value contains a NUL character, which the message store cannot \
                     hold.",
                ),
                "40001" | "40P01" => {
                    tracing::warn!(error = %e, "PostgreSQL transaction conflict");
                    Error::Unavailable(
                        "The operation conflicted with a concurrent one. Please try again.".into(),
                    )
                }
                "57014" => {
                    tracing::warn!(error = %e, "PostgreSQL statement timeout");
                    Error::Unavailable(
                        "The message store (PostgreSQL) did not complete the operation in time. \
                         Please try again in a few seconds."
                            .into(),
                    )
                }
                c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
                    tracing::warn!(error = %e, "PostgreSQL unavailable");
                    Error::Unavailable(CONNECTION_LOST.into())
                }
                _ => {
                    tracing::error!(error = %e, "PostgreSQL error");
                    Error::Unavailable(FAILED.into())
                }
            }
        }
        _ => {
            tracing::error!(error = %e, "PostgreSQL driver error");
            Error::Unavailable(FAILED.into())
        }
    }
}

pub(super) fn corrupt(what: impl std::fmt::Display) -> Error {
    tracing::error!(error = %what, "unreadable row in the PostgreSQL message store");
    Error::Unavailable(FAILED.into())
}
