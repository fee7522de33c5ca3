//! gRPC authentication of agent streams: the agent token from the
//! `authorization` metadata, checked by the protocol-neutral
//! [`AgentGate`] (which keeps the token logic in `auth`), and every
//! [`Denied`] said as the gRPC status an agent acts on.

use std::net::SocketAddr;

use fleetwatch_proto::AUTHORIZATION_METADATA;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::auth::agent_access::AgentGate;
use crate::auth::agent_tokens::AgentToken;
use crate::connected::Denied;

/// Checks the token a stream opened with, before its first message is read.
pub async fn authenticate(
    gate: &AgentGate,
    metadata: &MetadataMap,
    peer: Option<SocketAddr>,
) -> Result<AgentToken, Status> {
    gate.authenticate(bearer(metadata), peer)
        .await
        .map_err(status)
}

/// The gRPC status for a denial: `UNAUTHENTICATED`, `PERMISSION_DENIED`,
/// `RESOURCE_EXHAUSTED` or `UNAVAILABLE`, with its message.
pub fn status(denied: Denied) -> Status {
    match denied {
        Denied::Unauthenticated(m) => Status::unauthenticated(m),
        Denied::PermissionDenied(m) => Status::permission_denied(m),
        Denied::TooManyFailures(m) | Denied::OverQuota(m) => Status::resource_exhausted(m),
        Denied::Unavailable(m) => Status::unavailable(m),
    }
}

/// The secret from `authorization: Bearer <token>`.
fn bearer(metadata: &MetadataMap) -> Result<&str, &'static str> {
    let value = metadata.get(AUTHORIZATION_METADATA).ok_or(
        "missing agent token: give the agent --token (see `fleetwatch-aggregator token add`)",
    )?;
    let text = value
        .to_str()
        .map_err(|_| "malformed authorization metadata")?;
    text.strip_prefix("Bearer ")
        .map(str::trim)
        .ok_or("authorization metadata must be `Bearer <agent token>`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert(AUTHORIZATION_METADATA, value.parse().unwrap());
        m
    }

    #[test]
    fn bearer_takes_the_token_after_bearer() {
        assert_eq!(bearer(&metadata("Bearer fwa_abc")), Ok("fwa_abc"));
        assert!(bearer(&MetadataMap::new()).unwrap_err().contains("missing"));
        assert!(bearer(&metadata("Basic xyz")).is_err());
    }

    #[test]
    fn each_refusal_has_its_own_code() {
        let codes = [
            status(Denied::Unauthenticated("a".into())).code(),
            status(Denied::PermissionDenied("b".into())).code(),
            status(Denied::TooManyFailures("c".into())).code(),
            status(Denied::OverQuota("e".into())).code(),
            status(Denied::Unavailable("d".into())).code(),
        ];
        assert_eq!(
            codes,
            [
                tonic::Code::Unauthenticated,
                tonic::Code::PermissionDenied,
                tonic::Code::ResourceExhausted,
                tonic::Code::ResourceExhausted,
                tonic::Code::Unavailable
            ]
        );
        assert_eq!(status(Denied::Unavailable("d".into())).message(), "d");
    }
}
