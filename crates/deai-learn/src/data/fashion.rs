//! Fashion-MNIST (Xiao et al. 2017, MIT licence) read from Debian's `dataset-fashion-mnist`.
//!
//! Four gzip'd IDX files under [`DEFAULT_DIR`] (or `$DEAI_FASHION_MNIST_DIR`): 60,000 training
//! and 10,000 test images of 28×28 bytes, labels `0..=9`. Pixels are scaled to `[0, 1]`. The
//! loader checks magic numbers, dimensions, counts and label range.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{LearnError, Result};

/// Where the Debian package puts the files.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Image side in pixels.
pub const SIDE: usize = 28;
/// Classes.
pub const CLASSES: usize = 10;
const HINT: &str = "run scripts/install-deps.sh (installs Debian's dataset-fashion-mnist)";

/// The directory holding the IDX files.
pub fn dir() -> PathBuf {
    std::env::var_os("DEAI_FASHION_MNIST_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from)
}

/// `(train, test)`, at most `limit` samples of each when given (the files' first ones).
pub fn load(limit: Option<usize>) -> Result<(Dataset, Dataset)> {
    let d = dir();
    let train = load_pair(&d, "train", 60_000, limit)?;
    let test = load_pair(&d, "t10k", 10_000, limit)?;
    Ok((train, test))
}

fn load_pair(dir: &Path, prefix: &str, count: usize, limit: Option<usize>) -> Result<Dataset> {
    let images_path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    let images = read_gz(&images_path)?;
    let labels = read_gz(&labels_path)?;
    let name = images_path.display().to_string();
    let n = parse_header(&images, 0x0803, &[count, SIDE, SIDE], &name)?;
    let m = parse_header(
        &labels,
        0x0801,
        &[count],
        &labels_path.display().to_string(),
    )?;
    let keep = limit.unwrap_or(n).min(n);
    let pixels = &images[16..16 + keep * SIDE * SIDE];
    let features = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    let labels: Vec<u32> = labels[8..8 + keep.min(m)]
        .iter()
        .map(|&l| u32::from(l))
        .collect();
    Dataset::new(&name, features, labels, SIDE * SIDE, CLASSES)
}

fn read_gz(path: &Path) -> Result<Vec<u8>> {
    if !path.exists() {
        return Err(LearnError::MissingData {
            path: path.to_path_buf(),
            hint: HINT,
        });
    }
    let file = std::fs::File::open(path).map_err(|source| LearnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .map_err(|source| LearnError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}

/// Checks an IDX header (magic, dimensions) and the payload size; returns the item count.
fn parse_header(bytes: &[u8], magic: u32, dims: &[usize], name: &str) -> Result<usize> {
    let header_len = 4 + 4 * dims.len();
    let word = |i: usize| -> Option<u32> {
        bytes
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match word(0) {
        Some(m) if m == magic => {}
        found => {
            return Err(LearnError::data(
                name,
                format!("magic {found:?}, expected {magic:#x}"),
            ));
        }
    }
    for (k, &want) in dims.iter().enumerate() {
        let got = word(k + 1).map(|v| v as usize);
        if got != Some(want) {
            return Err(LearnError::data(
                name,
                format!("dimension {k} is {got:?}, expected {want}"),
            ));
        }
    }
    let payload: usize = dims.iter().product();
    if bytes.len() != header_len + payload {
        let reason = format!("{} bytes, expected {}", bytes.len(), header_len + payload);
        return Err(LearnError::data(name, reason));
    }
    Ok(dims[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks_name_the_problem() {
        let mut ok = vec![0, 0, 8, 1, 0, 0, 0, 2];
        ok.extend([3, 4]);
        assert_eq!(parse_header(&ok, 0x0801, &[2], "x").ok(), Some(2));
        assert!(
            parse_header(&ok[..9], 0x0801, &[2], "x").is_err(),
            "short payload"
        );
        assert!(parse_header(&ok, 0x0803, &[2], "x").is_err(), "wrong magic");
        assert!(parse_header(&ok, 0x0801, &[3], "x").is_err(), "wrong count");
    }

    #[test]
    fn loads_a_few_hundred_samples() {
        let (train, test) = match load(Some(300)) {
            Ok(v) => v,
            Err(e) => panic!("Fashion-MNIST missing or bad ({e}); run scripts/install-deps.sh"),
        };
        assert_eq!((train.len(), test.len()), (300, 300));
        assert_eq!(train.sample_len, 784);
        assert!(train.features.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(
            train.labels[..3],
            [9, 0, 0],
            "first Fashion-MNIST labels: boot, T-shirt, T-shirt"
        );
    }
}
