//! fleetgate's wire contracts: the generated Rust for every `.proto` under `proto/fleetgate/`.
//!
//! Where it sits: the boundary. Agents and the hub convert these types into their own model at
//! the edge (agent `translate`, hub `admit`); nothing past admission sees a wire type.

/// `fleetgate.spoke.v1`: the agent <-> hub Sync stream.
pub mod spoke {
    pub mod v1 {
        tonic::include_proto!("fleetgate.spoke.v1");
    }
}

/// Largest message either side accepts on the Sync stream, in bytes. The agent splits nothing:
/// a cluster whose full state exceeds this is told so in the Nack and must shrink its intent.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
