//! OpenBao/Vault step kinds, all through Vault's HTTP API: init with key custody, unseal,
//! declarative configuration, KV seeding and root-token hygiene. See docs/vault.md.

mod client;
mod custody;
mod endpoint;
mod token;

pub mod config;
pub mod init;
pub mod init_worker;
pub mod kv;
pub mod root_token;
pub mod unseal;

#[cfg(test)]
mod testing;

pub use client::{VaultClient, VaultResponse};
pub use custody::{Custody, StoredKeys};
pub use endpoint::Endpoint;
