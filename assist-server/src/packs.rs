//! Reading a pack folder from disk and compiling it, with its knowledge index.

use crate::kb::{KbError, KnowledgeBase};
use assist_engine::{Engine, PackError, PackErrors, PackFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A pack ready to serve: the compiled engine and the knowledge index of its articles.
pub struct LoadedPack {
    pub engine: Arc<Engine>,
    pub knowledge: Arc<KnowledgeBase>,
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PackLoadError {
    /// The message includes the I/O error (not chained as a source: it would print twice).
    #[error("cannot read pack folder {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the pack has errors:\n{0}")]
    Invalid(PackErrors),
    #[error(transparent)]
    Knowledge(#[from] KbError),
}

/// Reads every `.toml` and `.md` file under `dir`, with paths relative to it. A file that is not
/// UTF-8 is reported as a pack error naming it; the rest are still read.
pub fn read_pack_files(dir: &Path) -> Result<Vec<PackFile>, PackLoadError> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|error| PackLoadError::Io {
            path: folder.clone(),
            error,
        })?;
        for entry in entries {
            let entry = entry.map_err(|error| PackLoadError::Io {
                path: folder.clone(),
                error,
            })?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let wanted = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("toml") | Some("md")
            );
            if !wanted {
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let bytes = std::fs::read(&path).map_err(|error| PackLoadError::Io {
                path: path.clone(),
                error,
            })?;
            match String::from_utf8(bytes) {
                Ok(contents) => files.push(PackFile {
                    path: relative,
                    contents,
                }),
                Err(e) => problems.push(PackError {
                    file: relative,
                    line: 0,
                    message: format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
                }),
            }
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(PackLoadError::Invalid(PackErrors(problems)))
    }
}

/// Reads, validates and compiles the pack in `dir`, and indexes its articles.
/// This is `check-pack`; the console's pack edits go through the same [`compile_pack`].
pub fn load_pack(dir: &Path) -> Result<LoadedPack, PackLoadError> {
    let files = read_pack_map(dir)?;
    let mut pack = compile_pack(&files, &dir.display().to_string())?;
    pack.dir = dir.to_path_buf();
    Ok(pack)
}

/// A pack as the console edits it: relative path (`rules/abuse.toml`) -> file text.
pub type PackFiles = std::collections::BTreeMap<String, String>;

/// Reads a pack folder into a path -> text map (what pack versions store).
pub fn read_pack_map(dir: &Path) -> Result<PackFiles, PackLoadError> {
    Ok(read_pack_files(dir)?
        .into_iter()
        .map(|f| (f.path, f.contents))
        .collect())
}

/// Validates and compiles a pack given as a file map, with exactly the checks of
/// `check-pack` ([`load_pack`]): the same parse, the same compile, the same index build.
/// `label` names the pack in [`LoadedPack::dir`] (e.g. `version 7`).
pub fn compile_pack(files: &PackFiles, label: &str) -> Result<LoadedPack, PackLoadError> {
    let mut problems = Vec::new();
    let mut list = Vec::with_capacity(files.len());
    for (path, contents) in files {
        let bad = path.is_empty()
            || path.starts_with('/')
            || path.contains('\\')
            || path
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..");
        let wanted = path.ends_with(".toml") || path.ends_with(".md");
        if bad || !wanted {
            problems.push(PackError {
                file: path.clone(),
                line: 0,
                message: "not a pack file: use a relative path (like `scripts/refund.toml`) ending in .toml or .md".into(),
            });
            continue;
        }
        list.push(PackFile {
            path: path.clone(),
            contents: contents.clone(),
        });
    }
    if !problems.is_empty() {
        return Err(PackLoadError::Invalid(PackErrors(problems)));
    }
    let engine = Engine::from_files(&list).map_err(PackLoadError::Invalid)?;
    let knowledge = KnowledgeBase::build(&engine.articles)?;
    Ok(LoadedPack {
        engine: Arc::new(engine),
        knowledge: Arc::new(knowledge),
        dir: PathBuf::from(label),
    })
}
