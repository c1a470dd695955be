//! The command-line layer: clap types, settings, prompts and confirmation. The engine never
//! sees clap or dialoguer; it is handed plain settings and decisions.

pub mod args;
mod confirm;
mod entry;
mod graph;
mod init_worker;
mod logging;
mod prompter;
mod session;
mod settings;

pub use entry::main;
