//! GitHub-flavoured Markdown tables: a header with its alignment row, and body rows. Cells
//! arrive escaped (see `escape.rs`) and formatted (figures by `heimdall_perf_core::units`).

use crate::escape::escape;

/// Appends one table row: `| a | b | c |`.
pub(crate) fn row<I, S>(out: &mut String, cells: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    out.push('|');
    for c in cells {
        out.push(' ');
        out.push_str(c.as_ref());
        out.push_str(" |");
    }
    out.push('\n');
}

/// Appends a table header: the names (escaped) and the delimiter row, numeric columns
/// (`true`) right-aligned.
pub(crate) fn header(out: &mut String, columns: &[(&str, bool)]) {
    row(out, columns.iter().map(|(name, _)| escape(name)));
    out.push('|');
    for (_, numeric) in columns {
        out.push_str(if *numeric { " ---: |" } else { " :--- |" });
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_aligns_numeric_columns_right() {
        let mut s = String::new();
        header(&mut s, &[("Path", false), ("Count", true)]);
        assert_eq!(s, "| Path | Count |\n| :--- | ---: |\n");
    }

    #[test]
    fn row_separates_cells_with_pipes() {
        let mut s = String::new();
        row(&mut s, ["a", "1"]);
        assert_eq!(s, "| a | 1 |\n");
    }
}
