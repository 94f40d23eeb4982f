//! Reading people's data: a CSV of numbers, one sample per row, one column the label, checked
//! against a [`Schema`] as it is read (every error names the line and the column), into the
//! [`Dataset`] the node's dataset format stores.

use deai_learn::data::Dataset;
use thiserror::Error;

use crate::schema::Schema;

/// Why a CSV was refused. Lines count from 1, as an editor shows them.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ImportError {
    /// The CSV itself is malformed (unequal row lengths, bad quoting, not UTF-8).
    #[error("line {line}: {reason}")]
    Csv {
        /// The line.
        line: u64,
        /// What the reader said.
        reason: String,
    },
    /// The label column is neither a header name nor a column number of this file.
    #[error("no label column {given:?}: the file has {columns} columns{header}")]
    LabelColumn {
        /// As given.
        given: String,
        /// Columns per row.
        columns: usize,
        /// The header's names, if the file has one (", named a, b, c").
        header: String,
    },
    /// Rows have another number of feature columns than the schema's features.
    #[error(
        "{got} feature columns (besides the label); schema {schema} has {expected} features per sample"
    )]
    Width {
        /// The schema.
        schema: &'static str,
        /// Its features.
        expected: usize,
        /// Columns found, less the label.
        got: usize,
    },
    /// A value is not a number, or outside the schema's range.
    #[error("line {line}, column {column}: {value:?} {reason}")]
    Value {
        /// The line.
        line: u64,
        /// The column's header name, or its 1-based number.
        column: String,
        /// The text found.
        value: String,
        /// What it should have been.
        reason: String,
    },
    /// No sample rows.
    #[error("no samples: the file has no data rows")]
    Empty,
}

/// A CSV read into a dataset.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The samples, stored as the schema says (written value · scale).
    pub data: Dataset,
    /// Whether the first row was a header (it had a field that is not a number).
    pub header: bool,
    /// The label column, 0-based.
    pub label_column: usize,
}

fn is_number(field: &str) -> bool {
    field.trim().parse::<f64>().is_ok()
}

fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

/// Reads `bytes` as CSV under `schema`. `label` names the label column: a header name, or a
/// 1-based column number (`1` is the first column; `-1`-style negatives are not taken). The
/// first row is a header when any of its fields is not a number. Every other column is a feature,
/// in file order.
pub fn from_csv(bytes: &[u8], schema: &Schema, label: &str) -> Result<Imported, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut records = reader.records();
    let csv_error = |e: csv::Error| ImportError::Csv {
        line: e.position().map_or(0, csv::Position::line),
        reason: match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("{len} fields where the first row has {expected_len}"),
            _ => e.to_string(),
        },
    };
    let first = match records.next() {
        None => return Err(ImportError::Empty),
        Some(r) => r.map_err(csv_error)?,
    };
    let header = first.iter().any(|f| !is_number(f));
    let names: Vec<String> = if header {
        first.iter().map(str::to_string).collect()
    } else {
        Vec::new()
    };
    let columns = first.len();
    let label_column = names
        .iter()
        .position(|n| n == label)
        .or_else(|| {
            label
                .parse::<usize>()
                .ok()
                .filter(|&c| (1..=columns).contains(&c))
                .map(|c| c - 1)
        })
        .ok_or_else(|| ImportError::LabelColumn {
            given: label.to_string(),
            columns,
            header: if names.is_empty() {
                " and no header row (give a column number, 1 for the first)".into()
            } else if names.len() <= 10 {
                format!(", named {}", names.join(", "))
            } else {
                format!(
                    ", named {}, ..., {}",
                    names[..5].join(", "),
                    names[names.len() - 3..].join(", ")
                )
            },
        })?;
    if columns - 1 != schema.features {
        return Err(ImportError::Width {
            schema: schema.name,
            expected: schema.features,
            got: columns - 1,
        });
    }
    let column_name = |c: usize| names.get(c).cloned().unwrap_or_else(|| (c + 1).to_string());
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let rows = (!header).then_some(Ok(first)).into_iter().chain(records);
    for record in rows {
        let record = record.map_err(csv_error)?;
        let line = line_of(&record);
        let bad = |c: usize, value: &str, reason: String| ImportError::Value {
            line,
            column: column_name(c),
            value: value.to_string(),
            reason,
        };
        for (c, field) in record.iter().enumerate() {
            if c == label_column {
                let l: u32 = field.parse().map_err(|_| {
                    bad(
                        c,
                        field,
                        format!("is not a label 0..={}", schema.classes - 1),
                    )
                })?;
                if l as usize >= schema.classes {
                    return Err(bad(
                        c,
                        field,
                        format!("is not a label 0..={}", schema.classes - 1),
                    ));
                }
                labels.push(l);
                continue;
            }
            let v: f32 = field
                .parse()
                .map_err(|_| bad(c, field, "is not a number".into()))?;
            if !schema.allows_raw(v) {
                let kind = if schema.integer {
                    "a whole number in"
                } else {
                    "a number in"
                };
                return Err(bad(
                    c,
                    field,
                    format!(
                        "is not {kind} {}..={} (schema {})",
                        schema.raw_min, schema.raw_max, schema.name
                    ),
                ));
            }
            features.push(v * schema.scale);
        }
    }
    if labels.is_empty() {
        return Err(ImportError::Empty);
    }
    let data =
        Dataset::new("csv", features, labels, schema.features, schema.classes).map_err(|e| {
            ImportError::Csv {
                line: 0,
                reason: e.to_string(),
            }
        })?;
    Ok(Imported {
        data,
        header,
        label_column,
    })
}

/// Writes `data` as CSV under `schema` (written units, a header `p1..pN,label`): the inverse of
/// [`from_csv`], for examples and tests.
pub fn to_csv(data: &Dataset, schema: &Schema) -> String {
    let mut out = String::new();
    for i in 1..=schema.features {
        out.push_str(&format!("p{i},"));
    }
    out.push_str("label\n");
    for (row, label) in data.features.chunks(data.sample_len).zip(&data.labels) {
        for v in row {
            out.push_str(&format!("{},", v / schema.scale));
        }
        out.push_str(&format!("{label}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    fn digits() -> (&'static Schema, Dataset) {
        let s = schema::find("digits-8x8").expect("known");
        let all = deai_learn::data::digits::load().expect("vendored");
        let n = 40;
        let d = Dataset::new(
            "head",
            all.features[..n * 64].to_vec(),
            all.labels[..n].to_vec(),
            64,
            10,
        )
        .expect("slice");
        (s, d)
    }

    #[test]
    fn a_written_csv_reads_back_to_the_same_samples() {
        let (s, d) = digits();
        let text = to_csv(&d, s);
        let back = from_csv(text.as_bytes(), s, "label").expect("reads");
        assert!(back.header);
        assert_eq!(back.label_column, 64);
        assert_eq!(back.data, d);
        // By column number, label first, no header, CRLF and a BOM.
        let mut moved = String::from("\u{feff}");
        for (row, l) in d.features.chunks(64).zip(&d.labels) {
            moved.push_str(&l.to_string());
            for v in row {
                moved.push_str(&format!(",{}", v * 16.0));
            }
            moved.push_str("\r\n");
        }
        let back = from_csv(moved.as_bytes(), s, "1").expect("reads");
        assert!(!back.header);
        assert_eq!(back.data, d);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let (s, d) = digits();
        let text = to_csv(&d, s);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        // Line 3 (the second sample), column p5: out of range.
        let mut fields: Vec<&str> = lines[2].split(',').collect();
        fields[4] = "17";
        lines[2] = fields.join(",");
        let err = from_csv(lines.join("\n").as_bytes(), s, "label").expect_err("17 > 16");
        assert!(
            matches!(&err, ImportError::Value { line: 3, column, value, .. } if column == "p5" && value == "17"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("0..=16") && msg.contains("line 3"), "{msg}");

        let bad_label = text.replacen(",0\n", ",12\n", 1);
        let err = from_csv(bad_label.as_bytes(), s, "label").expect_err("label 12");
        assert!(err.to_string().contains("0..=9"), "{err}");

        let short = format!("{text}1,2,3\n");
        let err = from_csv(short.as_bytes(), s, "label").expect_err("ragged");
        assert!(matches!(err, ImportError::Csv { line: 42, .. }), "{err:?}");

        let err = from_csv(text.as_bytes(), s, "digit").expect_err("no such column");
        assert!(err.to_string().contains("p1, p2"), "{err}");
        assert!(err.to_string().contains("p64, label"), "{err}");
        assert!(!err.to_string().contains("p30"), "65 names are cut: {err}");
        let err = from_csv(text.as_bytes(), s, "66").expect_err("65 columns");
        assert!(matches!(err, ImportError::LabelColumn { columns: 65, .. }));

        assert_eq!(
            from_csv(b"", s, "1").expect_err("empty"),
            ImportError::Empty
        );
        let header_only = text.lines().next().expect("header");
        assert_eq!(
            from_csv(header_only.as_bytes(), s, "label").expect_err("no rows"),
            ImportError::Empty
        );
        let narrow = "a,b,label\n1,2,3\n";
        assert!(matches!(
            from_csv(narrow.as_bytes(), s, "label").expect_err("2 features"),
            ImportError::Width { got: 2, .. }
        ));
        let fraction = text.replacen(",0,", ",0.5,", 1);
        let err = from_csv(fraction.as_bytes(), s, "label").expect_err("0.5 pixel");
        assert!(err.to_string().contains("whole number"), "{err}");
    }
}
