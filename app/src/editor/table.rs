//! CSV and TSV read into a table for the viewer: the header, the first rows, how many rows
//! there are. Quoted fields (RFC 4180: `""` for a quote, separators and line breaks inside
//! quotes) are read as spreadsheets read them.

/// Rows shown; the rest are counted.
pub const SHOWN_ROWS: usize = 500;
/// Columns shown; wider files say so.
pub const SHOWN_COLUMNS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub header: Vec<String>,
    /// The first [`SHOWN_ROWS`] rows after the header.
    pub rows: Vec<Vec<String>>,
    /// Every row after the header.
    pub total_rows: usize,
    /// More columns than [`SHOWN_COLUMNS`] were cut off.
    pub cut_columns: bool,
}

/// The separator a file's name implies: tab for `.tsv`/`.tab`, comma otherwise.
pub fn separator_for(path: &str) -> char {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".tsv") || lower.ends_with(".tab") {
        '\t'
    } else {
        ','
    }
}

/// Reads `text` as rows of fields separated by `separator`.
pub fn parse(text: &str, separator: char) -> Table {
    let mut table = Table::default();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .chars()
        .peekable();
    let mut started = false;
    let finish = |record: &mut Vec<String>, table: &mut Table| {
        let mut done = std::mem::take(record);
        if done.len() > SHOWN_COLUMNS {
            done.truncate(SHOWN_COLUMNS);
            table.cut_columns = true;
        }
        if table.header.is_empty() && table.total_rows == 0 && table.rows.is_empty() {
            table.header = done;
        } else {
            table.total_rows += 1;
            if table.rows.len() < SHOWN_ROWS {
                table.rows.push(done);
            }
        }
    };
    while let Some(char) = chars.next() {
        started = true;
        if quoted {
            match char {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
            continue;
        }
        match char {
            '"' if field.is_empty() => quoted = true,
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut field));
                finish(&mut record, &mut table);
                started = false;
            }
            other if other == separator => record.push(std::mem::take(&mut field)),
            other => field.push(other),
        }
    }
    if started {
        record.push(field);
        finish(&mut record, &mut table);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_reads_into_header_rows_and_a_count() {
        let table = parse(
            "name,age\nada,36\r\n\"Lovelace, A.\",\"say \"\"hi\"\"\"\nmulti,\"line\none\"\n",
            ',',
        );
        assert_eq!(table.header, ["name", "age"]);
        assert_eq!(
            table.rows,
            [
                vec!["ada".to_owned(), "36".to_owned()],
                vec!["Lovelace, A.".to_owned(), "say \"hi\"".to_owned()],
                vec!["multi".to_owned(), "line\none".to_owned()],
            ]
        );
        assert_eq!(table.total_rows, 3);
        assert!(!table.cut_columns);
    }

    #[test]
    fn tsv_no_final_newline_and_limits() {
        let table = parse("\u{feff}a\tb\n1\t2", separator_for("DATA.TSV"));
        assert_eq!(table.header, ["a", "b"]);
        assert_eq!(table.rows, [vec!["1".to_owned(), "2".to_owned()]]);
        let many: String = std::iter::once("x\n".to_owned())
            .chain((0..SHOWN_ROWS + 10).map(|n| format!("{n}\n")))
            .collect();
        let table = parse(&many, ',');
        assert_eq!(table.rows.len(), SHOWN_ROWS);
        assert_eq!(table.total_rows, SHOWN_ROWS + 10);
        let wide = (0..SHOWN_COLUMNS + 5)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let table = parse(&wide, ',');
        assert_eq!(table.header.len(), SHOWN_COLUMNS);
        assert!(table.cut_columns);
        assert_eq!(parse("", ','), Table::default());
    }
}
