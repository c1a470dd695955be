//! Problems found in phase files, reported like a compiler does: `file:line:col: error: ...`
//! with a hint, all of them at once, sorted by file and position.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem at one place in a phase file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the phases directory was given (relative paths stay relative).
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no position (an unreadable file).
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    /// What is wrong: a lowercase fragment without a trailing period.
    pub message: String,
    /// The next move.
    pub hint: Option<String>,
    /// `phase/step` when the problem is inside a step.
    pub step: Option<String>,
}

impl Diagnostic {
    pub fn new(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint: None,
            step: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    pub fn step(mut self, full_id: impl Into<String>) -> Self {
        self.step = Some(full_id.into());
        self
    }

    pub fn maybe_step(mut self, full_id: Option<String>) -> Self {
        self.step = full_id;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        write!(f, ": error: ")?;
        if let Some(step) = &self.step {
            write!(f, "step `{step}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found, sorted by file, line and column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// Sorted and without exact duplicates (one mistake can be seen by two checks).
    pub fn sorted(mut self) -> Self {
        self.0.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
        });
        self.0.dedup();
        self
    }

    /// `Err(self)` when there is any problem.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.sorted())
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler_with_step_and_hint() {
        let d = Diagnostic::new(
            Path::new("phases/40-gitea.yaml"),
            12,
            5,
            "unknown field `comand`",
        )
        .step("gitea/dex-source")
        .hint("did you mean `command`?");
        assert_eq!(
            d.to_string(),
            "phases/40-gitea.yaml:12:5: error: step `gitea/dex-source`: unknown field `comand`\n  hint: did you mean `command`?"
        );
    }

    #[test]
    fn sorts_by_file_then_position() {
        let all = Diagnostics(vec![
            Diagnostic::new(Path::new("b.yaml"), 1, 1, "x"),
            Diagnostic::new(Path::new("a.yaml"), 9, 1, "y"),
            Diagnostic::new(Path::new("a.yaml"), 2, 7, "z"),
        ])
        .sorted();
        let order: Vec<_> = all.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(order, ["z", "y", "x"]);
    }
}
