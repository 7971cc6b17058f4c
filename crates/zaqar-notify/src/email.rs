//! E-mail delivery (`mailto`): building the message, then handing it to the configured
//! `smtp_command` (sendmail style) or speaking SMTP to `smtp_host`.

use std::time::Duration;

use crate::deliver::AttemptError;
use crate::{Notifier, SmtpMode, SmtpTls};

impl Notifier {
    pub(crate) async fn send_mail(
        &self,
        to: &str,
        from: &str,
        subject: &str,
        text: &str,
    ) -> Result<(), AttemptError> {
        use lettre::message::{header::ContentType, Mailbox};
        let perm = |m: String| AttemptError {
            message: m,
            retry: false,
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e| perm(format!("bad recipient {to:?}: {e}")))?;
        let from: Mailbox = if from.is_empty() {
            "Zaqar Notifications <no-reply@localhost>"
                .parse()
                .expect("valid")
        } else {
            from.parse()
                .or_else(|_| format!("{from} <no-reply@localhost>").parse())
                .map_err(|e| perm(format!("bad sender {from:?}: {e}")))?
        };
        let msg = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_string())
            .map_err(|e| perm(format!("cannot build the e-mail: {e}")))?;
        match self.cfg.smtp_mode {
            SmtpMode::Command => self.send_with_command(&msg.formatted()).await,
            SmtpMode::Smtp => self.send_with_smtp(msg).await,
        }
    }

    async fn send_with_command(&self, raw: &[u8]) -> Result<(), AttemptError> {
        use tokio::io::AsyncWriteExt;
        let mut parts = self.cfg.smtp_command.split_whitespace();
        let Some(program) = parts.next() else {
            return Err(AttemptError {
                message: "[notification] smtp_command is empty".into(),
                retry: false,
            });
        };
        let mut child = tokio::process::Command::new(program)
            .args(parts)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| AttemptError {
                message: format!("cannot run {program}: {e}"),
                retry: true,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(raw).await;
        }
        let out = child.wait_with_output().await.map_err(|e| AttemptError {
            message: format!("{program}: {e}"),
            retry: true,
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(AttemptError {
                message: format!(
                    "{program} exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                retry: true,
            })
        }
    }

    async fn send_with_smtp(&self, msg: lettre::Message) -> Result<(), AttemptError> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
        let host = self.cfg.smtp_host.as_str();
        let builder = match self.cfg.smtp_tls {
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| AttemptError {
            message: format!("SMTP {host}: {e}"),
            retry: false,
        })?;
        let mut builder = builder
            .port(self.cfg.smtp_port)
            .timeout(Some(Duration::from_secs(
                self.cfg.webhook_timeout_secs.max(1),
            )));
        if !self.cfg.smtp_user.is_empty() {
            builder = builder.credentials(Credentials::new(
                self.cfg.smtp_user.clone(),
                self.cfg.smtp_password.0.clone(),
            ));
        }
        builder
            .build()
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| AttemptError {
                retry: !e.is_permanent(),
                message: format!("SMTP {host}:{}: {e}", self.cfg.smtp_port),
            })
    }
}

#[cfg(test)]
mod tests {
    use zaqar_core::service::subscriptions::{mailto_address, mailto_params};

    #[test]
    fn mailto_parsing() {
        assert_eq!(
            mailto_address("mailto:a%40b@example.com?subject=Hi"),
            "a@b@example.com"
        );
        assert_eq!(mailto_address("mailto:ops@example.com"), "ops@example.com");
        let p = mailto_params("mailto:x@y?Subject=Hello%20there&cc=z");
        assert_eq!(p["subject"], "Hello there");
    }
}
