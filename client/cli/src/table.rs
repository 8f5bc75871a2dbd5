//! Aligned columns, `ps`-style: numbers to the right, text to the left,
//! and no padding after the last column (commands can be long).

use std::io::{self, Write};

/// Which side of its column a value hugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// The width of the terminal stdout writes to; `None` when stdout is no
/// terminal, so that pipes and files get whole lines (as with `ps`).
pub fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() {
        return None;
    }
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(columns);
    }
    let (terminal_size::Width(columns), _) = terminal_size::terminal_size_of(io::stdout())?;
    (columns > 0).then_some(usize::from(columns))
}

/// A table being filled row by row, printed once complete (widths need
/// every row).
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and alignments.
    pub fn new(headers: impl IntoIterator<Item = (String, Align)>) -> Table {
        Table {
            headers: headers.into_iter().collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; it should have a cell per header.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Removes column `i` from the headers and every row.
    pub fn remove_column(&mut self, i: usize) {
        if i < self.headers.len() {
            self.headers.remove(i);
        }
        for row in &mut self.rows {
            if i < row.len() {
                row.remove(i);
            }
        }
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the header line and every row, each cut to `max_width`
    /// characters when given (the terminal's width, as `ps` does).
    /// The header line comes only when `header` (not with --no-headers);
    /// the columns keep the width the header gives them, so that tables
    /// with and without it line up alike.
    pub fn write_with(
        &self,
        out: &mut dyn Write,
        max_width: Option<usize>,
        header: bool,
    ) -> io::Result<()> {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|(h, _)| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let headers: Vec<String> = self.headers.iter().map(|(h, _)| h.clone()).collect();
        let header = header.then_some(&headers);
        for row in header.into_iter().chain(&self.rows) {
            let mut line = String::new();
            let last = row.len().saturating_sub(1);
            for (i, cell) in row.iter().enumerate() {
                let align = self.headers.get(i).map_or(Align::Left, |(_, a)| *a);
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(width(cell));
                if i > 0 {
                    line.push(' ');
                }
                match align {
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                    Align::Left => {
                        line.push_str(cell);
                        if i != last {
                            line.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                }
            }
            if let Some(max) = max_width
                && let Some((cut, _)) = line.char_indices().nth(max)
            {
                line.truncate(cut);
            }
            // An empty last cell would leave the padding of the one before.
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_align_right_and_the_last_column_is_not_padded() {
        let mut t = Table::new([
            ("PID".to_owned(), Align::Right),
            ("USER".to_owned(), Align::Left),
            ("COMMAND".to_owned(), Align::Left),
        ]);
        t.push(vec!["1".into(), "root".into(), "/sbin/init".into()]);
        t.push(vec!["4242".into(), "www-data".into(), "nginx".into()]);
        let mut out = Vec::new();
        t.write_with(&mut out, None, true).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            " PID USER     COMMAND\n   1 root     /sbin/init\n4242 www-data nginx\n"
        );
        let mut out = Vec::new();
        t.write_with(&mut out, Some(16), true).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            " PID USER     CO\n   1 root     /s\n4242 www-data ng\n"
        );
    }
}
