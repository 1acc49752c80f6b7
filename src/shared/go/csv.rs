//! Stakater's list flags (`--namespaces`, `--namespace-selector`, …) are pflag
//! `StringSlice`s, which read each occurrence as one record of Go's `encoding/csv` with its
//! defaults. So a field in double quotes loses them (stakater's chart renders
//! `--namespace-selector="team=a"`), keeps its commas and turns `""` into `"`; fields are
//! not trimmed; a quote anywhere else is an error. Only the first record counts: a line
//! break outside quotes ends it, and blank lines before it are skipped.

/// Why Go's CSV reader rejects a value (its wording; the column is 1-based, in bytes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("bare \" in non-quoted field (column {0})")]
    BareQuote(usize),
    #[error("extraneous or missing \" in quoted field (column {0})")]
    Quote(usize),
    #[error("no items, only line breaks")]
    NoRecord,
}

/// The items of one occurrence of a pflag `StringSlice` flag; an empty value has none.
pub fn read_record(value: &str) -> Result<Vec<String>, CsvError> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let lines = go_lines(value);
    let first = lines
        .iter()
        .position(|l| !without_newline(l).is_empty())
        .ok_or(CsvError::NoRecord)?;
    Record {
        lines: &lines[first..],
        line_no: 0,
        fields: Vec::new(),
    }
    .read()
}

/// `value` split after each `\n`, with a line-final `\r\n` read as `\n` and a `\r` at the
/// very end dropped, as Go's reader does.
fn go_lines(value: &str) -> Vec<String> {
    value
        .split_inclusive('\n')
        .map(|l| match l.strip_suffix("\r\n") {
            Some(body) => format!("{body}\n"),
            None if !l.ends_with('\n') => l.strip_suffix('\r').unwrap_or(l).to_owned(),
            None => l.to_owned(),
        })
        .collect()
}

fn without_newline(line: &str) -> &str {
    line.strip_suffix('\n').unwrap_or(line)
}

struct Record<'a> {
    /// The record's first line and the ones a quoted field may run on into.
    lines: &'a [String],
    /// The line being read.
    line_no: usize,
    fields: Vec<String>,
}

impl<'a> Record<'a> {
    fn read(mut self) -> Result<Vec<String>, CsvError> {
        let (mut line, mut column) = (self.lines[0].as_str(), 1);
        loop {
            let next = match line.strip_prefix('"') {
                Some(inside) => self.quoted(inside, column + 1)?,
                None => self.unquoted(line, column)?,
            };
            match next {
                Some((rest, at)) => (line, column) = (rest, at),
                None => return Ok(self.fields),
            }
        }
    }

    /// Reads a field that does not start with a quote; returns where the next one starts.
    fn unquoted(&mut self, line: &'a str, column: usize) -> Result<Next<'a>, CsvError> {
        let (field, rest) = match line.find(',') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (without_newline(line), None),
        };
        if let Some(j) = field.find('"') {
            return Err(CsvError::BareQuote(column + j));
        }
        self.fields.push(field.to_owned());
        Ok(rest.map(|r| (r, column + field.len() + 1)))
    }

    /// Reads a field after its opening quote, `line` starting at `column`, possibly on
    /// into the following lines; returns where the next field starts.
    fn quoted(&mut self, mut line: &'a str, mut column: usize) -> Result<Next<'a>, CsvError> {
        let mut field = String::new();
        loop {
            let Some(i) = line.find('"') else {
                field.push_str(line);
                column += line.len();
                self.line_no += 1;
                match self.lines.get(self.line_no) {
                    Some(next) => (line, column) = (next, 1),
                    None => return Err(CsvError::Quote(column)),
                }
                continue;
            };
            field.push_str(&line[..i]);
            (line, column) = (&line[i + 1..], column + i + 1);
            if let Some(rest) = line.strip_prefix('"') {
                field.push('"');
                (line, column) = (rest, column + 1);
            } else if let Some(rest) = line.strip_prefix(',') {
                self.fields.push(field);
                return Ok(Some((rest, column + 1)));
            } else if without_newline(line).is_empty() {
                self.fields.push(field);
                return Ok(None);
            } else {
                return Err(CsvError::Quote(column - 1));
            }
        }
    }
}

/// Where the next field starts, if any: the rest of its line and its column.
type Next<'a> = Option<(&'a str, usize)>;

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str) -> Vec<String> {
        read_record(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
    }

    #[test]
    fn quotes_are_stripped_and_keep_commas() {
        assert_eq!(ok(r#""team=a""#), ["team=a"]);
        assert_eq!(ok(r#""team=a,env!=prod""#), ["team=a,env!=prod"]);
        assert_eq!(ok(r#"a,"b,c",d"#), ["a", "b,c", "d"]);
        assert_eq!(ok(r#""say ""hi""""#), [r#"say "hi""#]);
        assert_eq!(ok(r#""""#), [""]);
    }

    #[test]
    fn fields_are_not_trimmed_and_empty_fields_count() {
        assert_eq!(ok("jobs, cronjobs"), ["jobs", " cronjobs"]);
        assert_eq!(ok("a,"), ["a", ""]);
        assert_eq!(ok(",a"), ["", "a"]);
        assert_eq!(ok(" "), [" "]);
        assert!(ok("").is_empty(), "pflag: an empty value is an empty list");
    }

    #[test]
    fn only_the_first_record_counts() {
        assert_eq!(ok("a\nb"), ["a"]);
        assert_eq!(ok("\n\r\na,b\nc"), ["a", "b"], "blank lines are skipped");
        assert_eq!(ok("a\r\n"), ["a"]);
        assert_eq!(ok("a\r"), ["a"]);
        assert_eq!(ok("\"a\r\nb\",c\nd"), ["a\nb", "c"], "quotes span lines");
        assert_eq!(ok("\"a\nb\",\"c\nd\",e\nf"), ["a\nb", "c\nd", "e"]);
        assert_eq!(read_record("\n"), Err(CsvError::NoRecord));
    }

    #[test]
    fn stray_quotes_are_errors_at_go_s_column() {
        assert_eq!(read_record(r#"a"b"#), Err(CsvError::BareQuote(2)));
        assert_eq!(read_record(r#"x, "a""#), Err(CsvError::BareQuote(4)));
        assert_eq!(read_record(r#""a"b"#), Err(CsvError::Quote(3)));
        assert_eq!(read_record(r#"x,"a"b"#), Err(CsvError::Quote(5)));
        assert_eq!(read_record(r#""abc"#), Err(CsvError::Quote(5)));
        assert_eq!(read_record("\"a\nb"), Err(CsvError::Quote(2)));
    }
}
