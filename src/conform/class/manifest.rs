//! The class: its submissions, from a TOML manifest or from every folder
//! matching `--each`. Defaults (the flags, then the manifest's top) fill
//! in what a submission does not say; paths are taken relative to the
//! manifest. Every mistake is found before anything runs, with its line.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::conform::select::glob;

/// One student's work, ready to grade.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Submission {
    pub name: String,
    /// The working directory of its commands.
    pub dir: PathBuf,
    /// The shell command that starts its server (`{port}` replaced).
    pub server: Option<String>,
    /// The shell command that starts its client (`{port}` replaced).
    pub client: Option<String>,
    /// Its users file, as `--users`.
    pub users: Option<PathBuf>,
    /// Its expected failures, as `--expect`.
    pub expect: Option<PathBuf>,
    /// The longest wait for any one reply, line or prompt.
    pub timeout: Duration,
}

/// What every submission gets unless it says otherwise.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Defaults {
    pub server: Option<String>,
    pub client: Option<String>,
    pub users: Option<PathBuf>,
    pub expect: Option<PathBuf>,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    #[serde(flatten)]
    defaults: Defaults,
    #[serde(default)]
    submission: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Option<String>,
    dir: PathBuf,
    server: Option<String>,
    client: Option<String>,
    users: Option<PathBuf>,
    expect: Option<PathBuf>,
    timeout: Option<String>,
}

/// Why there is no class to grade.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ManifestError {
    Read {
        path: PathBuf,
        error: String,
    },
    /// Not TOML, or not a manifest: the parser's message has the line.
    Syntax {
        path: PathBuf,
        message: String,
    },
    /// A submission that cannot be graded as written.
    Submission {
        name: String,
        message: String,
    },
    /// `--each` matched nothing, or the manifest lists nobody.
    Empty(String),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Read { path, error } => {
                write!(f, "cannot read the manifest {}: {error}", path.display())
            }
            ManifestError::Syntax { path, message } => {
                write!(f, "{}: {}", path.display(), message.trim_end())
            }
            ManifestError::Submission { name, message } => {
                write!(f, "submission `{name}`: {message}")
            }
            ManifestError::Empty(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ManifestError {}

/// Reads the manifest at `path`; `flags` are the defaults under its own.
pub(crate) fn from_manifest(
    path: &Path,
    flags: &Defaults,
) -> Result<Vec<Submission>, ManifestError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ManifestError::Read { path: path.to_owned(), error: e.to_string() })?;
    let base = path.parent().unwrap_or(Path::new("")).to_owned();
    let parsed = parse(&text, path)?;
    let defaults = layered(&parsed.defaults, flags);
    let entries: Vec<(Option<String>, PathBuf, Defaults)> = parsed
        .submission
        .into_iter()
        .map(|e| {
            let own = Defaults {
                server: e.server,
                client: e.client,
                users: e.users,
                expect: e.expect,
                timeout: e.timeout,
            };
            (e.name, e.dir, own)
        })
        .collect();
    if entries.is_empty() {
        return Err(ManifestError::Empty(format!(
            "{}: no [[submission]] in the manifest",
            path.display()
        )));
    }
    build(entries, &defaults, &base)
}

/// Every folder that `pattern` (`submissions/*`) matches is a submission
/// named after its folder, with the flags' commands.
pub(crate) fn from_each(pattern: &str, flags: &Defaults) -> Result<Vec<Submission>, ManifestError> {
    let folders = matching_folders(pattern)?;
    if folders.is_empty() {
        return Err(ManifestError::Empty(format!("--each `{pattern}` matches no folder")));
    }
    let entries = folders.into_iter().map(|dir| (None, dir, Defaults::default())).collect();
    build(entries, flags, Path::new(""))
}

fn parse(text: &str, path: &Path) -> Result<ManifestFile, ManifestError> {
    toml::from_str(text)
        .map_err(|e| ManifestError::Syntax { path: path.to_owned(), message: e.to_string() })
}

/// `over`, with `under` where `over` says nothing.
fn layered(over: &Defaults, under: &Defaults) -> Defaults {
    Defaults {
        server: over.server.clone().or_else(|| under.server.clone()),
        client: over.client.clone().or_else(|| under.client.clone()),
        users: over.users.clone().or_else(|| under.users.clone()),
        expect: over.expect.clone().or_else(|| under.expect.clone()),
        timeout: over.timeout.clone().or_else(|| under.timeout.clone()),
    }
}

fn build(
    entries: Vec<(Option<String>, PathBuf, Defaults)>,
    defaults: &Defaults,
    base: &Path,
) -> Result<Vec<Submission>, ManifestError> {
    let mut names = BTreeSet::new();
    let mut class = Vec::new();
    for (name, dir, own) in entries {
        let own = layered(&own, defaults);
        let name = name.unwrap_or_else(|| {
            dir.file_name()
                .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
        });
        let bad = |message: String| ManifestError::Submission { name: name.clone(), message };
        if name.trim().is_empty() {
            return Err(bad("the name is empty".into()));
        }
        if !names.insert(name.clone()) {
            return Err(bad("two submissions have this name; give each its own".into()));
        }
        let dir = base.join(dir);
        if !dir.is_dir() {
            return Err(bad(format!("its dir {} is not a folder", dir.display())));
        }
        if own.server.is_none() && own.client.is_none() {
            return Err(bad(
                "no server and no client command: give `server` or `client` (here or at the top)"
                    .into(),
            ));
        }
        let timeout = match &own.timeout {
            Some(text) => crate::duration::parse_positive(text)
                .map_err(|e| bad(format!("timeout `{text}`: {e}")))?,
            None => Duration::from_secs(2),
        };
        let file = |p: &Option<PathBuf>, what: &str| -> Result<Option<PathBuf>, ManifestError> {
            let Some(p) = p else { return Ok(None) };
            let p = base.join(p);
            if p.is_file() {
                Ok(Some(p))
            } else {
                Err(bad(format!("its {what} file {} does not exist", p.display())))
            }
        };
        class.push(Submission {
            users: file(&own.users, "users")?,
            expect: file(&own.expect, "expect")?,
            name,
            dir,
            server: own.server,
            client: own.client,
            timeout,
        });
    }
    Ok(class)
}

/// The folders matching `pattern`, sorted: a literal folder, then a last
/// part that may hold `*` and `?` (`submissions/*`, `work/team-?`).
fn matching_folders(pattern: &str) -> Result<Vec<PathBuf>, ManifestError> {
    let path = Path::new(pattern);
    let last = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if parent.to_string_lossy().contains(['*', '?']) {
        return Err(ManifestError::Empty(format!(
            "--each `{pattern}`: only the last part may hold * or ?"
        )));
    }
    let listing = std::fs::read_dir(&parent).map_err(|e| {
        ManifestError::Empty(format!("--each `{pattern}`: cannot list {}: {e}", parent.display()))
    })?;
    let mut folders: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.starts_with('.') && glob(last.as_bytes(), name.as_bytes())
        })
        .map(|e| e.path())
        .collect();
    folders.sort();
    Ok(folders)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("manifest-test-{}", std::process::id()));
        for name in ["ana", "budi", ".hidden"] {
            std::fs::create_dir_all(dir.join("subs").join(name)).unwrap();
        }
        std::fs::write(dir.join("users.json"), "{}").unwrap();
        dir
    }

    #[test]
    fn defaults_fill_in_and_paths_are_relative_to_the_manifest() {
        let dir = class_dir();
        let manifest = dir.join("class.toml");
        std::fs::write(
            &manifest,
            "server = \"python3 s.py {port}\"\ntimeout = \"500ms\"\n\n[[submission]]\nname = \"Ana\"\ndir = \"subs/ana\"\nusers = \"users.json\"\n\n[[submission]]\ndir = \"subs/budi\"\nserver = \"./server {port}\"\nclient = \"python3 c.py {port}\"\ntimeout = \"3\"\n",
        )
        .unwrap();
        let class = from_manifest(&manifest, &Defaults::default()).unwrap();
        assert_eq!(class.len(), 2);
        assert_eq!(class[0].name, "Ana");
        assert_eq!(class[0].dir, dir.join("subs/ana"));
        assert_eq!(class[0].server.as_deref(), Some("python3 s.py {port}"));
        assert_eq!(class[0].client, None);
        assert_eq!(class[0].users, Some(dir.join("users.json")));
        assert_eq!(class[0].timeout, Duration::from_millis(500));
        assert_eq!(class[1].name, "budi");
        assert_eq!(class[1].server.as_deref(), Some("./server {port}"));
        assert_eq!(class[1].timeout, Duration::from_secs(3));
    }

    #[test]
    fn mistakes_are_named_with_their_line_or_submission() {
        let dir = class_dir();
        let manifest = dir.join("bad.toml");
        std::fs::write(
            &manifest,
            "server = \"x\"\n[[submission]]\ndir = \"subs/ana\"\nserverr = \"y\"\n",
        )
        .unwrap();
        let error = from_manifest(&manifest, &Defaults::default()).unwrap_err().to_string();
        assert!(error.contains("line 4") && error.contains("serverr"), "{error}");

        std::fs::write(&manifest, "[[submission]]\ndir = \"subs/ana\"\n").unwrap();
        let error = from_manifest(&manifest, &Defaults::default()).unwrap_err().to_string();
        assert!(error.contains("submission `ana`") && error.contains("no server"), "{error}");

        std::fs::write(&manifest, "server = \"x\"\n[[submission]]\ndir = \"subs/nobody\"\n")
            .unwrap();
        let error = from_manifest(&manifest, &Defaults::default()).unwrap_err().to_string();
        assert!(error.contains("not a folder"), "{error}");

        std::fs::write(&manifest, "server = \"x\"\n[[submission]]\ndir = \"subs/ana\"\n[[submission]]\nname = \"ana\"\ndir = \"subs/budi\"\n").unwrap();
        let error = from_manifest(&manifest, &Defaults::default()).unwrap_err().to_string();
        assert!(error.contains("two submissions"), "{error}");
    }

    #[test]
    fn each_takes_every_visible_matching_folder_in_order() {
        let dir = class_dir();
        let flags = Defaults { client: Some("python3 c.py {port}".into()), ..Defaults::default() };
        let pattern = format!("{}/*", dir.join("subs").display());
        let class = from_each(&pattern, &flags).unwrap();
        let names: Vec<&str> = class.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ana", "budi"]);
        assert_eq!(class[1].client.as_deref(), Some("python3 c.py {port}"));
        let none = format!("{}/z*", dir.join("subs").display());
        assert!(matches!(from_each(&none, &flags), Err(ManifestError::Empty(_))));
    }
}
