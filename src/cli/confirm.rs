//! The one question before the first change to a cluster: which context, which API server,
//! what will change. Asked on the terminal with dialoguer; without a terminal the answer is
//! no, and the CLI says to pass --yes.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::{Confirmation, Decider};

pub struct TerminalDecider {
    interactive: bool,
    refused_without_terminal: AtomicBool,
}

impl TerminalDecider {
    pub fn new(interactive: bool) -> Self {
        TerminalDecider {
            interactive,
            refused_without_terminal: AtomicBool::new(false),
        }
    }

    /// Whether it said no only because there was no terminal to ask.
    pub fn refused_without_terminal(&self) -> bool {
        self.refused_without_terminal.load(Ordering::SeqCst)
    }
}

impl Decider for TerminalDecider {
    fn confirm(&self, confirmation: &Confirmation) -> bool {
        if !self.interactive {
            self.refused_without_terminal.store(true, Ordering::SeqCst);
            return false;
        }
        let plan = &confirmation.plan;
        eprintln!();
        eprintln!("context:    {}", confirmation.context);
        eprintln!("API server: {}", confirmation.server);
        eprintln!("{plan}");
        for removed in &confirmation.removes {
            eprintln!("forget:     {removed}");
        }
        dialoguer::Confirm::new()
            .with_prompt("Go ahead?")
            .default(false)
            .interact()
            .unwrap_or(false)
    }
}
