//! Go's `text/tabwriter` for tables whose rows all have the same shape (`gitea admin ... list`).

/// The tabwriter settings a command passes to `tabwriter.NewWriter`.
#[derive(Clone, Copy, Debug)]
pub struct TabWriter {
    pub min_width: usize,
    pub tab_width: usize,
    pub padding: usize,
    pub pad_char: char,
    /// `tabwriter.Debug`: a `|` between columns.
    pub vertical_bars: bool,
}

impl TabWriter {
    /// Renders lines of tab-terminated cells; the last cell of a line is not part of a column,
    /// exactly as in Go, so it gets no padding.
    pub fn render(&self, lines: &[Vec<String>]) -> String {
        let columns = lines
            .iter()
            .map(|l| l.len().saturating_sub(1))
            .max()
            .unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|column| {
                lines
                    .iter()
                    .filter(|l| l.len() > column + 1)
                    .map(|l| l[column].chars().count() + self.padding)
                    .fold(self.min_width, usize::max)
            })
            .collect();
        let mut out = String::new();
        for line in lines {
            for (j, cell) in line.iter().enumerate() {
                if j > 0 && self.vertical_bars {
                    out.push('|');
                }
                out.push_str(cell);
                if j + 1 < line.len() {
                    self.pad(&mut out, cell.chars().count(), widths[j]);
                }
            }
            out.push('\n');
        }
        out
    }

    fn pad(&self, out: &mut String, text_width: usize, cell_width: usize) {
        if self.pad_char == '\t' {
            if self.tab_width == 0 {
                return;
            }
            let cell_width = cell_width.div_ceil(self.tab_width) * self.tab_width;
            let missing = cell_width.saturating_sub(text_width);
            out.extend(std::iter::repeat_n('\t', missing.div_ceil(self.tab_width)));
        } else {
            out.extend(std::iter::repeat_n(
                self.pad_char,
                cell_width.saturating_sub(text_width),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(items: &[&[&str]]) -> Vec<Vec<String>> {
        items
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect()
    }

    #[test]
    fn tab_padding_matches_products_example() {
        let w = TabWriter {
            min_width: 0,
            tab_width: 8,
            padding: 1,
            pad_char: '\t',
            vertical_bars: false,
        };
        let out = w.render(&rows(&[
            &["ID", "Name", "Type", "Enabled"],
            &["1", "kanidm", "OAuth2", "true"],
            &["2", "authentik-sso", "OAuth2", "true"],
        ]));
        assert_eq!(
            out,
            "ID\tName\t\tType\tEnabled\n1\tkanidm\t\tOAuth2\ttrue\n2\tauthentik-sso\tOAuth2\ttrue\n"
        );
    }

    #[test]
    fn space_padding_matches_user_list_example() {
        let w = TabWriter {
            min_width: 5,
            tab_width: 0,
            padding: 1,
            pad_char: ' ',
            vertical_bars: false,
        };
        let out = w.render(&rows(&[
            &["ID", "Username", "Email", "IsActive", "IsAdmin", "2FA"],
            &["1", "gitea", "admin@example.com", "true", "true", "false"],
        ]));
        assert_eq!(
            out,
            "ID   Username Email             IsActive IsAdmin 2FA\n1    gitea    admin@example.com true     true    false\n"
        );
    }
}
