//! What leaves the machine, never in the way of recording: [`upload`] sends sealed files and
//! their manifests to S3-compatible storage; [`nats`] publishes every line to NATS JetStream,
//! fed by the writer without waiting on it.

pub mod nats;
pub mod upload;
