//! OpenTelemetry trace export (cargo feature `otel`; `[opentelemetry] enabled = true`).
//!
//! Request spans (the `request` span of the HTTP middleware, with its method, route template,
//! project and request id; and everything inside it) are exported in batches over OTLP/HTTP
//! (protobuf) to `[opentelemetry] endpoint`; the HTTP transport makes an incoming W3C trace
//! context their parent (`http::trace_context`). Export runs on the SDK's own thread; a
//! collector that is down costs dropped spans, never request latency.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

use crate::config::OtelConfig;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The tracing layer that exports spans, or `None` when export is off. Call it once, outside
/// any async runtime (the exporter's HTTP client is a blocking one).
pub fn layer<S>(config: &OtelConfig) -> Result<Option<OpenTelemetryLayer<S, Tracer>>, String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !config.enabled {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(config.endpoint.clone())
        .build()
        .map_err(|e| format!("[opentelemetry] endpoint {}: {e}", config.endpoint))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("zaqar");
    let _ = PROVIDER.set(provider);
    zaqar_api::http::trace_context::set_exporting(true);
    Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
}

/// Exports what is still buffered and stops the exporter (at process exit).
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        if let Err(e) = p.shutdown() {
            eprintln!("zaqar-server: OpenTelemetry shutdown: {e}");
        }
    }
}
