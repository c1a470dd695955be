//! Answers `prompt` steps on the terminal: hidden input for secrets, echoed otherwise.

use crate::steps::Prompter;

pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn ask(&self, question: &str, hidden: bool) -> Result<Option<String>, String> {
        let answer = if hidden {
            dialoguer::Password::new().with_prompt(question).interact()
        } else {
            dialoguer::Input::<String>::new()
                .with_prompt(question)
                .interact_text()
        };
        answer
            .map(Some)
            .map_err(|e| format!("cannot read the answer: {e}"))
    }
}
