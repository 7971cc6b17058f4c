//! The notifier's settings (`[notification]`): how e-mail leaves the server, webhook
//! timeouts, and the confirmation e-mail templates.

use zaqar_core::secret::Secret;

/// How e-mail leaves this server (`[notification] smtp_mode`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SmtpMode {
    /// Pipe the message to `smtp_command` (the reference's `third_part`).
    #[default]
    Command,
    /// Speak SMTP to `smtp_host` (the reference's `self_local`).
    Smtp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// TLS from the first byte (the reference's `self_local`, port 465).
    #[default]
    Implicit,
    StartTls,
    None,
}

/// An e-mail template (subject, body with `{0}` source, `{1}` project, `{2}` link, sender).
#[derive(Debug, Clone, Default)]
pub struct EmailTemplate {
    pub topic: String,
    pub body: String,
    pub sender: String,
}

/// `[notification]` settings.
#[derive(Debug, Clone, Default)]
pub struct NotifierConfig {
    pub require_confirmation: bool,
    pub max_workers: usize,
    pub webhook_timeout_secs: u64,
    pub smtp_mode: SmtpMode,
    pub smtp_command: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_user: String,
    pub smtp_password: Secret,
    pub external_confirmation_url: Option<String>,
    /// Public base URL of the HTTP API, put in confirmation messages.
    pub public_url: Option<String>,
    pub confirmation_template: EmailTemplate,
    pub unsubscribe_template: EmailTemplate,
}
