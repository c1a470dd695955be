//! bringup: brings up the platform services of a self-hosted Kubernetes cluster once GitOps
//! has installed their charts.

pub mod cli;
pub mod cluster;
pub mod engine;
pub mod error_chain;
pub mod phase;
pub mod report;
pub mod steps;
