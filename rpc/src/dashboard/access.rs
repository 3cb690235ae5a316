//! The per-call check behind the dashboard's read-only endpoint: a call that came in without credentials
//! (marked [`Access::ReadOnly`] by the guard) may only name a method of
//! [`READ_ONLY_METHODS`](super::READ_ONLY_METHODS).
//!
//! Why per call and not per HTTP request: one request may be a batch, and one WebSocket connection carries
//! many calls; the guard sees neither. jsonrpsee hands the HTTP request's extensions to every call (and
//! to every call of a WebSocket connection), so the mark set at the handshake follows each of them. A call
//! with no mark at all is treated as read-only: the check fails closed.

use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::types::{ErrorObject, Request};
use jsonrpsee::MethodResponse;
use std::future::Future;

/// The error code of a method that needs credentials, called on the read-only endpoint.
pub const NOT_ALLOWED: i32 = -32604;

/// What a request may call, set by the guard as an HTTP request extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Authenticated: every method.
    Full,
    /// The dashboard endpoint, no credentials: read-only methods only.
    ReadOnly,
}

fn allowed(extensions: &http::Extensions, method: &str) -> bool {
    extensions.get::<Access>() == Some(&Access::Full) || super::READ_ONLY_METHODS.contains(&method)
}

fn refusal(method: &str) -> ErrorObject<'static> {
    ErrorObject::owned(
        NOT_ALLOWED,
        format!(
            "method {method:?} is not served on the read-only dashboard endpoint: call it at / with http basic auth \
             (the cookie or an rpcauth user)"
        ),
        None::<()>,
    )
}

/// RPC middleware layer applying [`Access`] to every call.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOnlyLayer;

impl<S> tower::Layer<S> for ReadOnlyLayer {
    type Service = ReadOnlyService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ReadOnlyService { inner }
    }
}

/// The service of [`ReadOnlyLayer`].
#[derive(Clone, Debug)]
pub struct ReadOnlyService<S> {
    inner: S,
}

impl<S> RpcServiceT for ReadOnlyService<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            NotificationResponse = MethodResponse,
            BatchResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        async move {
            if allowed(request.extensions(), request.method_name()) {
                inner.call(request).await
            } else {
                tracing::debug!(method = request.method_name(), "refused on the read-only endpoint");
                MethodResponse::error(request.id, refusal(&request.method))
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let refused = match entry {
                Ok(BatchEntry::Call(req)) if !allowed(req.extensions(), req.method_name()) => {
                    Some(BatchEntryErr::new(req.id.clone(), refusal(req.method_name())))
                }
                Ok(BatchEntry::Notification(n)) if !allowed(n.extensions(), n.method_name()) => {
                    // A notification gets no answer: make it name no method, so nothing runs.
                    n.method = "".into();
                    None
                }
                _ => None,
            };
            if let Some(err) = refused {
                *entry = Err(err);
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(&self, mut n: Notification<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        if !allowed(n.extensions(), n.method_name()) {
            n.method = "".into();
        }
        self.inner.notification(n)
    }
}
