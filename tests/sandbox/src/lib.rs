//! bringup-sandbox: a faithful local emulation of the Kubernetes API server, with real OpenBao
//! behind it, for bringup's tests and demo.

pub mod controllers;
pub mod echo_emulator;
pub mod emulator;
pub mod exec;
pub mod openbao;
pub mod portforward;
#[cfg(test)]
mod testing;
pub mod tokens;
