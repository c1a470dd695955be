//! bringup-sandbox: a faithful local emulation of the Kubernetes API server for bringup's
//! tests and demo. See DESIGN.md, "The sandbox".

pub mod api;
pub mod api_error;
pub mod audit;
pub mod cli;
pub mod cluster_file;
pub mod discovery;
pub mod extensions;
pub mod faults;
pub mod kubeconfig;
pub mod managed_fields;
pub mod openapi;
pub mod patch;
pub mod registry;
pub mod request_info;
pub mod sandbox;
pub mod selector;
pub mod server;
pub mod server_state;
pub mod store;
pub mod table;

pub use api_error::ApiError;
pub use extensions::{Extensions, HookRequest, RequestHook, TokenAuthenticator};
pub use sandbox::{Sandbox, SandboxHandle, SandboxOptions};
pub use server_state::ServerState;
