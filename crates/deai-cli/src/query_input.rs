//! Query inputs from plain files: PNG images for the image models, JSON arrays, text for the
//! character model, raw engine bytes; a directory is every such file in it, in name order.
//!
//! Image pixels are read as the data sets store them: brighter means more ink (MNIST,
//! Fashion-MNIST, sklearn digits); `invert` reads dark-on-light scans. A pixel `p` of 0..=255
//! becomes `round(p · input_max / 255)`. Images must already have the model's side; nothing is
//! resized, so what the provider answers is exactly what the file holds.

use std::path::{Path, PathBuf};

use deai_infer::{Arch, QuantModel};

/// One input: where it came from and the engine's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInput {
    /// The file (and, for a JSON batch or raw file, the item's index).
    pub name: String,
    /// The model's input bytes.
    pub bytes: Vec<u8>,
}

/// Reads the inputs at `path` (a file or a directory of files) for `model`.
pub fn read(path: &Path, model: &QuantModel, invert: bool) -> anyhow::Result<Vec<QueryInput>> {
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && kind(p).is_some())
            .collect();
        files.sort();
        if files.is_empty() {
            anyhow::bail!(
                "{} holds no .png, .json, .txt or .bin file to query with",
                path.display()
            );
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for f in files {
        out.extend(read_file(&f, model, invert)?);
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Kind {
    Png,
    Json,
    Text,
    Raw,
}

fn kind(p: &Path) -> Option<Kind> {
    match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "png" => Some(Kind::Png),
        "json" => Some(Kind::Json),
        "txt" => Some(Kind::Text),
        "bin" => Some(Kind::Raw),
        _ => None,
    }
}

fn read_file(path: &Path, model: &QuantModel, invert: bool) -> anyhow::Result<Vec<QueryInput>> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let kind = kind(path).ok_or_else(|| {
        anyhow::anyhow!("{name}: use a .png image, a .json array, a .txt text or .bin raw input")
    })?;
    let items = match kind {
        Kind::Png => {
            vec![png_input(&bytes, model, invert).map_err(|e| anyhow::anyhow!("{name}: {e}"))?]
        }
        Kind::Json => json_inputs(&bytes).map_err(|e| anyhow::anyhow!("{name}: {e}"))?,
        Kind::Text => vec![text_input(&bytes, model).map_err(|e| anyhow::anyhow!("{name}: {e}"))?],
        Kind::Raw => {
            let len = model.input_shape().len;
            if bytes.is_empty() || !bytes.len().is_multiple_of(len) {
                anyhow::bail!(
                    "{name}: {} bytes is not a whole number of {len}-byte inputs",
                    bytes.len()
                );
            }
            bytes.chunks(len).map(<[u8]>::to_vec).collect()
        }
    };
    let many = items.len() > 1;
    items
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            deai_infer::decode_input(model, &b)
                .map_err(|e| anyhow::anyhow!("{name}{}: {e}", suffix(many, i)))?;
            Ok(QueryInput {
                name: format!("{name}{}", suffix(many, i)),
                bytes: b,
            })
        })
        .collect()
}

fn suffix(many: bool, i: usize) -> String {
    if many {
        format!("[{i}]")
    } else {
        String::new()
    }
}

/// The side of a square image model's input.
fn image_side(model: &QuantModel) -> anyhow::Result<usize> {
    if matches!(model.arch(), Arch::CharLstm { .. }) {
        anyhow::bail!("this is a character model: query it with a .txt file");
    }
    let len = model.input_shape().len;
    let side = (len as f64).sqrt().round() as usize;
    if side * side != len {
        anyhow::bail!("the model takes {len} features, not a square image: use a .json array");
    }
    Ok(side)
}

fn png_input(bytes: &[u8], model: &QuantModel, invert: bool) -> anyhow::Result<Vec<u8>> {
    let side = image_side(model)?;
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    if (w, h) != (side, side) {
        anyhow::bail!("the image is {w}×{h}; this model takes {side}×{side} (resize it first)");
    }
    let mut buf = vec![0u8; reader.output_buffer_size().unwrap_or(0)];
    let frame = reader.next_frame(&mut buf)?;
    let channels = frame.color_type.samples();
    let max = u32::from(model.input_shape().max);
    Ok(buf[..frame.buffer_size()]
        .chunks(channels)
        .map(|px| {
            // Grey is the mean of the colour channels; alpha is ignored.
            let colour = if channels >= 3 { &px[..3] } else { &px[..1] };
            let sum: u32 = colour.iter().map(|&c| u32::from(c)).sum();
            let grey = (sum + colour.len() as u32 / 2) / colour.len() as u32;
            let p = if invert { 255 - grey } else { grey };
            ((p * max + 127) / 255) as u8
        })
        .collect())
}

fn json_inputs(bytes: &[u8]) -> anyhow::Result<Vec<Vec<u8>>> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let as_bytes = |v: &serde_json::Value| -> anyhow::Result<Vec<u8>> {
        let arr = v
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("expected an array of integers 0..=255"))?;
        arr.iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| anyhow::anyhow!("{x} is not an integer 0..=255"))
            })
            .collect()
    };
    match value.as_array() {
        Some(items) if items.first().is_some_and(serde_json::Value::is_array) => {
            items.iter().map(as_bytes).collect()
        }
        _ => Ok(vec![as_bytes(&value)?]),
    }
}

/// The last `seq` characters of the text as character ids (printable ASCII − 32, others as a
/// space), left-padded with spaces: the model predicts the character that follows.
fn text_input(bytes: &[u8], model: &QuantModel) -> anyhow::Result<Vec<u8>> {
    let Arch::CharLstm { seq, vocab, .. } = model.arch() else {
        anyhow::bail!("a .txt input is for the character model; this model takes images");
    };
    if vocab != 95 {
        anyhow::bail!(
            "this character model has {vocab} symbols; only the 95-symbol printable-ASCII vocabulary reads text"
        );
    }
    let text = String::from_utf8_lossy(bytes);
    let ids: Vec<u8> = text
        .chars()
        .map(|c| match c {
            ' '..='~' => c as u8 - 32,
            _ => 0,
        })
        .collect();
    let tail = &ids[ids.len().saturating_sub(seq)..];
    let mut out = vec![0u8; seq - tail.len()];
    out.extend_from_slice(tail);
    Ok(out)
}

/// How an output reads for a person: the class, and for the character model the character.
pub fn describe(model: &QuantModel, class: u32) -> String {
    match model.arch() {
        Arch::CharLstm { vocab: 95, .. } => {
            let c = char::from_u32(class + 32).unwrap_or('?');
            format!("{c:?} (id {class})")
        }
        _ => format!("class {class}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mlp() -> QuantModel {
        QuantModel::seeded(
            Arch::Mlp {
                inputs: 64,
                hidden: 8,
                classes: 10,
            },
            1,
        )
    }

    fn png_of(side: u32, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("header");
        w.write_image_data(pixels).expect("data");
        drop(w);
        out
    }

    #[test]
    fn png_json_raw_and_directories_read_to_the_same_bytes() {
        let m = mlp();
        let max = m.input_shape().max;
        let pixels: Vec<u8> = (0..64u32).map(|i| (i * 4) as u8).collect();
        let expect: Vec<u8> = pixels
            .iter()
            .map(|&p| ((u32::from(p) * u32::from(max) + 127) / 255) as u8)
            .collect();
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("a.png"), png_of(8, &pixels)).expect("w");
        std::fs::write(
            dir.path().join("b.json"),
            serde_json::to_vec(&expect).expect("json"),
        )
        .expect("w");
        std::fs::write(
            dir.path().join("c.bin"),
            [expect.clone(), expect.clone()].concat(),
        )
        .expect("w");
        std::fs::write(dir.path().join("notes.md"), "ignored").expect("w");
        let all = read(dir.path(), &m, false).expect("reads");
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|i| i.bytes == expect), "{all:?}");
        assert!(all[2].name.ends_with("c.bin[0]"));
        let inverted = read(&dir.path().join("a.png"), &m, true).expect("reads");
        assert_eq!(
            inverted[0].bytes[0], max,
            "a white pixel inverted is full ink"
        );
    }

    #[test]
    fn wrong_sizes_and_values_are_named() {
        let m = mlp();
        let dir = tempfile::tempdir().expect("tmp");
        let big = dir.path().join("big.png");
        std::fs::write(&big, png_of(9, &[0; 81])).expect("w");
        let err = read(&big, &m, false).expect_err("refused").to_string();
        assert!(err.contains("9×9") && err.contains("8×8"), "{err}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[1, 2, 300]").expect("w");
        assert!(read(&bad, &m, false).is_err());
        let short = dir.path().join("short.json");
        std::fs::write(&short, "[1, 2, 3]").expect("w");
        let err = read(&short, &m, false).expect_err("refused").to_string();
        assert!(err.contains("64"), "{err}");
    }
}
