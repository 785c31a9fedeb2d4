//! The peer's identity on the agent-facing gRPC server: the verified client certificate's
//! cluster, if the fleet accepts it now. Shared by `sync` (the Sync stream) and `enroll`
//! (`EnrollService/Renew`), so that neither reaches into the other; the payload never names the
//! identity.

use tonic::{Request, Status};

use crate::fleet::Fleet;
use crate::identity::PeerIdentity;
use crate::model::ClusterKey;

/// The verified client certificate's cluster and validity, if the fleet accepts it now.
/// Shared by Sync and `EnrollService/Renew`; the payload never names the identity.
pub fn identify<T>(
    fleet: &Fleet,
    trust_domain: &str,
    req: &Request<T>,
) -> Result<(ClusterKey, PeerIdentity), Status> {
    let certs = req.peer_certs().ok_or_else(|| {
        Status::unauthenticated(
            "no client certificate: enroll with a bootstrap token (`fleetgate-agent --bootstrap-token`) or connect with the identity `fleetgate-hub ca issue` wrote",
        )
    })?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("empty client certificate chain"))?;
    let peer = PeerIdentity::from_certificate(leaf, trust_domain)
        .map_err(|e| Status::unauthenticated(e.to_string()))?;
    let key = ClusterKey {
        tenant: peer.id.tenant.clone(),
        cluster: peer.id.cluster.clone(),
    };
    if let Err(e) = fleet.check_identity(&key, peer.issued_at) {
        tracing::warn!(cluster = %key, "refused a client certificate: {e}");
        return Err(Status::permission_denied(e.to_string()));
    }
    Ok((key, peer))
}
