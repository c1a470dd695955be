//! bringup-sandbox: a faithful local emulation of the Kubernetes API server, with real OpenBao
//! behind it, for bringup's tests and demo. See DESIGN.md, "The sandbox".

pub mod api;
pub mod api_error;
pub mod audit;
pub mod cli;
pub mod cluster_file;
pub mod controllers;
pub mod dex_pods;
pub mod discovery;
pub mod echo_emulator;
pub mod emulated_pods;
pub mod emulator;
pub mod emulators;
pub mod exec;
pub mod extensions;
pub mod external_secret_controller;
pub mod faults;
pub mod kubeconfig;
pub mod managed_fields;
pub mod openapi;
pub mod openbao;
pub mod patch;
pub mod pod_runtime;
pub mod pod_status;
pub mod portforward;
pub mod registry;
pub mod request_info;
pub mod root_ca;
pub mod sandbox;
pub mod selector;
pub mod server;
pub mod server_state;
pub mod store;
pub mod table;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod tokens;

pub use api_error::ApiError;
pub use extensions::{Extensions, HookRequest, RequestHook, TokenAuthenticator};
pub use sandbox::{Sandbox, SandboxHandle, SandboxOptions};
pub use server_state::ServerState;
