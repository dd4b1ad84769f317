//! Calls to any flyteidl2 method with pre-serialized messages.
//!
//! Python builds and decodes messages with the flyteidl2 `_pb2` modules; this module only
//! moves their bytes over the same channel, TLS and auth as the controller. One generic
//! unary call and one generic server stream serve every run-level method (RunService,
//! RunLogsService) without a Python gRPC stack.

use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Request, Status, Streaming};

use tonic::service::interceptor::InterceptedService;

use crate::client::{AuthInterceptor, Client, ClientError};

/// A codec that passes message bytes through unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

#[derive(Clone, Copy, Debug, Default)]
pub struct RawEncoder;

#[derive(Clone, Copy, Debug, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0u8; buf.remaining()];
        buf.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// Why a call failed: the gRPC status, or a client-side problem before any call was made.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("invalid method path '{0}': expected /package.Service/Method")]
    BadMethod(String),
    #[error("{}: {}", crate::client::code_name(.0.code()), .0.message())]
    Status(Box<Status>),
}

fn method_path(method: &str) -> Result<PathAndQuery, RpcError> {
    // "/package.Service/Method": a non-empty service and a non-empty method, nothing else.
    let valid = method
        .strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(service, name)| {
            !service.is_empty() && !name.is_empty() && !name.contains('/')
        });
    if !valid {
        return Err(RpcError::BadMethod(method.to_string()));
    }
    method
        .parse::<PathAndQuery>()
        .map_err(|_| RpcError::BadMethod(method.to_string()))
}

type Channel = InterceptedService<tonic::transport::Channel, AuthInterceptor>;

/// A gRPC client on the shared channel, ready to send one call.
async fn ready(client: &Client) -> Result<tonic::client::Grpc<Channel>, RpcError> {
    let mut grpc = tonic::client::Grpc::new(client.grpc_channel()?)
        .max_decoding_message_size(64 * 1024 * 1024);
    grpc.ready().await.map_err(|e| {
        RpcError::Status(Box::new(Status::unavailable(crate::client::error_chain(
            &e,
        ))))
    })?;
    Ok(grpc)
}

/// Runs `call`; when the credentials it carried are rejected, signs in again (or renews) and
/// runs it once more.
async fn signed_in<T, F, Fut>(client: &Client, call: F) -> Result<T, RpcError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, RpcError>>,
{
    match call().await {
        Err(RpcError::Status(s))
            if s.code() == tonic::Code::Unauthenticated && client.refresh_credentials().await =>
        {
            call().await
        }
        other => other,
    }
}

/// One unary call: request bytes in, response bytes out.
pub async fn unary(client: &Client, method: &str, request: Vec<u8>) -> Result<Vec<u8>, RpcError> {
    Ok(unary_with_headers(client, method, request).await?.0)
}

/// One unary call that also returns the response's headers (ASCII values only), lowercased.
pub async fn unary_with_headers(
    client: &Client,
    method: &str,
    request: Vec<u8>,
) -> Result<(Vec<u8>, Vec<(String, String)>), RpcError> {
    let path = method_path(method)?;
    let call = |request: Vec<u8>, path: PathAndQuery| async move {
        let mut req = Request::new(request);
        req.set_timeout(client.rpc_timeout());
        ready(client)
            .await?
            .unary(req, path, RawCodec)
            .await
            .map_err(|s| RpcError::Status(Box::new(s)))
    };
    let resp = signed_in(client, || call(request.clone(), path.clone())).await?;
    let headers = resp
        .metadata()
        .iter()
        .filter_map(|entry| match entry {
            tonic::metadata::KeyAndValueRef::Ascii(key, value) => {
                Some((key.as_str().to_string(), value.to_str().ok()?.to_string()))
            }
            tonic::metadata::KeyAndValueRef::Binary(..) => None,
        })
        .collect();
    Ok((resp.into_inner(), headers))
}

/// Opens a server stream; messages are read with `Streaming::message`.
pub async fn server_stream(
    client: &Client,
    method: &str,
    request: Vec<u8>,
) -> Result<Streaming<Vec<u8>>, RpcError> {
    let path = method_path(method)?;
    let call = |request: Vec<u8>, path: PathAndQuery| async move {
        ready(client)
            .await?
            .server_streaming(Request::new(request), path, RawCodec)
            .await
            .map_err(|s| RpcError::Status(Box::new(s)))
    };
    let resp = signed_in(client, || call(request.clone(), path.clone())).await?;
    Ok(resp.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_paths_are_validated() {
        assert!(method_path("/flyteidl2.workflow.RunService/CreateRun").is_ok());
        for bad in [
            "",
            "CreateRun",
            "/flyteidl2.workflow.RunService/",
            "/a/b/c",
            "//x",
        ] {
            assert!(
                matches!(method_path(bad), Err(RpcError::BadMethod(_))),
                "{bad}"
            );
        }
    }
}
