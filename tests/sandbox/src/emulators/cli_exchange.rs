//! The wire format of one emulated command run: what `sandbox-emu` posts and what it gets back.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// One invocation of an emulated program, as the multi-call binary saw it in the pod.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CliRequest {
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Base64 of everything read from stdin.
    #[serde(default)]
    pub stdin: String,
    #[serde(default = "default_uid")]
    pub uid: u32,
}

fn default_uid() -> u32 {
    1000
}

impl CliRequest {
    pub fn new(argv: &[&str]) -> Self {
        Self {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            uid: default_uid(),
            ..Self::default()
        }
    }

    pub fn env(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    pub fn stdin_bytes(&self) -> Vec<u8> {
        STANDARD.decode(&self.stdin).unwrap_or_default()
    }

    /// The program name, as `argv[0]`'s file name (the symlink the shell ran).
    pub fn program(&self) -> &str {
        self.argv
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .unwrap_or("")
    }
}

/// What the emulated program wrote and how it exited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CliOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

impl CliOutput {
    pub fn ok(stdout: impl Into<String>) -> Self {
        Self {
            stdout: stdout.into(),
            ..Self::default()
        }
    }

    pub fn fail(stderr: impl Into<String>, exit_code: i32) -> Self {
        Self {
            stderr: stderr.into(),
            exit_code,
            ..Self::default()
        }
    }

    pub fn to_wire(&self) -> CliResponse {
        CliResponse {
            stdout: STANDARD.encode(&self.stdout),
            stderr: STANDARD.encode(&self.stderr),
            exit_code: self.exit_code,
        }
    }
}

/// [`CliOutput`] on the wire: both streams base64, so any byte survives.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CliResponse {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

impl CliResponse {
    pub fn decode(&self) -> (Vec<u8>, Vec<u8>) {
        (
            STANDARD.decode(&self.stdout).unwrap_or_default(),
            STANDARD.decode(&self.stderr).unwrap_or_default(),
        )
    }
}
