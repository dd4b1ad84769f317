//! Paths of the data dir that values refer to: files, directories and data frames, offloaded
//! literals, and paths inside msgpack-encoded dataclasses. They decide what an attempt's view
//! opens besides its own run (an uploaded input, a code bundle), and how a cache hit's outputs,
//! produced by another run, are brought into the run that uses them.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use flyteidl2::flyteidl::core::{literal, scalar, Literal};
use flyteidl2::flyteidl::task::Outputs;
use prost::Message;

use crate::layout::{dir_uri, file_uri, uri_to_path};

/// Binary literals tagged with this hold msgpack (dataclasses and models).
const MSGPACK_TAG: &str = "msgpack";

/// Calls `visit` on every URI-like string of the literal, which it may rewrite.
pub fn visit_uris(literal: &mut Literal, visit: &mut dyn FnMut(&mut String)) {
    match &mut literal.value {
        Some(literal::Value::Scalar(scalar)) => match &mut scalar.value {
            Some(scalar::Value::Blob(blob)) => visit(&mut blob.uri),
            Some(scalar::Value::StructuredDataset(sd)) => visit(&mut sd.uri),
            Some(scalar::Value::Schema(schema)) => visit(&mut schema.uri),
            Some(scalar::Value::Union(union)) => {
                if let Some(inner) = union.value.as_deref_mut() {
                    visit_uris(inner, visit);
                }
            }
            Some(scalar::Value::Binary(binary)) if binary.tag == MSGPACK_TAG => {
                if let Ok(mut value) = rmpv::decode::read_value(&mut binary.value.as_slice()) {
                    let mut changed = false;
                    visit_msgpack(&mut value, &mut |s: &mut String| {
                        let before = s.clone();
                        visit(s);
                        changed |= *s != before;
                    });
                    let mut encoded = Vec::new();
                    if changed && rmpv::encode::write_value(&mut encoded, &value).is_ok() {
                        binary.value = encoded;
                    }
                }
            }
            _ => {}
        },
        Some(literal::Value::Collection(c)) => {
            for item in &mut c.literals {
                visit_uris(item, visit);
            }
        }
        Some(literal::Value::Map(m)) => {
            for item in m.literals.values_mut() {
                visit_uris(item, visit);
            }
        }
        Some(literal::Value::OffloadedMetadata(meta)) => visit(&mut meta.uri),
        None => {}
    }
}

fn visit_msgpack(value: &mut rmpv::Value, visit: &mut dyn FnMut(&mut String)) {
    match value {
        rmpv::Value::String(s) => {
            if let Some(text) = s.as_str() {
                let mut text = text.to_string();
                let before = text.clone();
                visit(&mut text);
                if text != before {
                    *s = text.into();
                }
            }
        }
        rmpv::Value::Array(items) => items.iter_mut().for_each(|v| visit_msgpack(v, visit)),
        rmpv::Value::Map(pairs) => pairs.iter_mut().for_each(|(_, v)| visit_msgpack(v, visit)),
        _ => {}
    }
}

/// The local path a string names, as a `file://` URI or an absolute path.
fn local_path(text: &str) -> Option<PathBuf> {
    if text.starts_with("file://") {
        uri_to_path(text).ok()
    } else if text.starts_with('/') && !text.contains('\0') {
        Some(PathBuf::from(text))
    } else {
        None
    }
}

/// The paths named by `texts` (URIs or absolute paths) that are inside one of `within` and
/// really there: no `..`, and no symbolic link on the way (which could lead anywhere).
pub fn paths_under<'a>(
    within: &[PathBuf],
    texts: impl IntoIterator<Item = &'a str>,
) -> Vec<PathBuf> {
    texts
        .into_iter()
        .filter_map(local_path)
        .filter(|p| is_inside(p, within))
        .collect()
}

fn is_inside(path: &Path, within: &[PathBuf]) -> bool {
    is_plain(path)
        && within.iter().any(|w| deep_enough(path, w))
        && fs::canonicalize(path).is_ok_and(|real| real == path)
}

/// Whether `path` is at least as deep below `top` as something of one run or one upload
/// (`<org>/<project>/<domain>/<run>/<x>`, `uploads/<project>/<domain>/<dir>/<file>`): a value
/// naming a whole project or all runs is given nothing.
fn deep_enough(path: &Path, top: &Path) -> bool {
    path.strip_prefix(top)
        .is_ok_and(|rel| rel.components().count() >= 5)
}

fn is_plain(path: &Path) -> bool {
    path.components().all(|c| {
        !matches!(
            c,
            std::path::Component::ParentDir | std::path::Component::CurDir
        )
    })
}

/// The paths inside `within` that the literals refer to (see [`paths_under`]).
pub fn literal_paths<'a>(
    within: &[PathBuf],
    literals: impl IntoIterator<Item = &'a Literal>,
) -> Vec<PathBuf> {
    let mut texts = Vec::new();
    for literal in literals {
        let mut literal = literal.clone();
        visit_uris(&mut literal, &mut |uri: &mut String| {
            texts.push(uri.clone())
        });
    }
    paths_under(within, texts.iter().map(String::as_str))
}

/// Where a run finds what a cache hit brings into it: `own`, the run's directory (a hit's
/// `outputs.pb` goes below it), and `refs`, where the files its outputs name are linked (its
/// tasks see that directory read-only, so they cannot change what other runs wrote).
pub struct RunDirs<'a> {
    pub own: &'a Path,
    pub refs: &'a Path,
    /// What outputs may name (see `Layout::shareable`); anything else stays where it is.
    pub shareable: &'a [PathBuf],
}

/// Brings a cache hit's outputs (the `outputs.pb` under `source`, written by another run) into
/// `target`, a directory of the run that uses them: every data-dir path they name outside the
/// run's own directories is hard-linked (copied where links fail) below `run.refs` and the
/// reference rewritten to it. The source is left as it was. Returns `target`'s URI.
pub fn bring_outputs(
    root: &Path,
    run: &RunDirs<'_>,
    source: &str,
    target: &Path,
) -> io::Result<String> {
    let source_file = uri_to_path(&crate::layout::outputs_file_uri(source))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let bytes = fs::read(&source_file)?;
    let mut outputs = Outputs::decode(bytes.as_slice())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let mut failure: Option<io::Error> = None;
    for named in &mut outputs.literals {
        let Some(literal) = named.value.as_mut() else {
            continue;
        };
        visit_uris(literal, &mut |uri: &mut String| {
            if failure.is_some() {
                return;
            }
            let Some(path) = local_path(uri) else {
                return;
            };
            let outside = !path.starts_with(run.own) && !path.starts_with(run.refs);
            if !outside || !is_inside(&path, run.shareable) {
                return;
            }
            let Ok(rel) = path.strip_prefix(root) else {
                return;
            };
            let copy = run.refs.join(rel);
            if let Err(err) = link_tree(&path, &copy) {
                failure = Some(err);
                return;
            }
            let was_dir = uri.ends_with('/');
            *uri = match (uri.starts_with("file://"), was_dir) {
                (true, true) => dir_uri(&copy),
                (true, false) => file_uri(&copy),
                (false, _) => copy.display().to_string(),
            };
        });
    }
    if let Some(err) = failure {
        return Err(err);
    }
    fs::create_dir_all(target)?;
    crate::datafile::write_atomic(&target.join("outputs.pb"), &outputs.encode_to_vec())?;
    Ok(dir_uri(target))
}

/// Hard-links the regular files of the file or tree at `from` below `to` (copying what cannot
/// be linked). `from` is another run's, so its tasks may change it meanwhile: everything is
/// reached through descriptors opened without following any symbolic link, and links are
/// left out (in the run that gets them they could lead anywhere). `to` is in the backend's own
/// `refs` directory, which no task can write.
fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    let source = open_no_links(libc::AT_FDCWD, from)?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    link_fd(&source, to)
}

/// [`crate::sandbox::open_no_links`], owned.
fn open_no_links(dir: libc::c_int, path: &Path) -> io::Result<OwnedFd> {
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a NUL-terminated path; the descriptor is new and owned by nobody else.
    unsafe {
        let fd = crate::sandbox::open_no_links(dir, &path)?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn link_fd(source: &OwnedFd, to: &Path) -> io::Result<()> {
    // The descriptor itself, as a path the kernel resolves to the object it was opened on.
    let handle = PathBuf::from(format!("/proc/self/fd/{}", source.as_raw_fd()));
    let meta = fs::metadata(&handle)?;
    if meta.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(&handle)? {
            let name = entry?.file_name();
            match open_no_links(source.as_raw_fd(), Path::new(&name)) {
                Ok(child) => link_fd(&child, &to.join(&name))?,
                // A symbolic link: left out.
                Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {}
                Err(err) => return Err(err),
            }
        }
        return Ok(());
    }
    if !meta.is_file() || fs::symlink_metadata(to).is_ok() {
        return Ok(());
    }
    let handle_c = std::ffi::CString::new(handle.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let to_c = std::ffi::CString::new(to.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: linkat on NUL-terminated paths.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            handle_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked == 0 {
        return Ok(());
    }
    let mut from = fs::File::open(&handle)?;
    let mut copy = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)?;
    io::copy(&mut from, &mut copy).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyteidl2::flyteidl::core::{Blob, LiteralCollection, Scalar};
    use flyteidl2::flyteidl::task::NamedLiteral;

    fn blob(uri: &str) -> Literal {
        Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Blob(Blob {
                    uri: uri.to_string(),
                    ..Default::default()
                })),
            }))),
            ..Default::default()
        }
    }

    fn msgpack(value: rmpv::Value) -> Literal {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &value).unwrap();
        Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Binary(flyteidl2::flyteidl::core::Binary {
                    value: bytes,
                    tag: MSGPACK_TAG.into(),
                })),
            }))),
            ..Default::default()
        }
    }

    #[test]
    fn paths_are_found_in_blobs_lists_and_dataclasses() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let data = root.join("data");
        for (file, text) in [
            ("data/_/p/d/r/a.csv", "a"),
            ("data/uploads/p/d/x/f.txt", "f"),
            ("backend.db", "db"),
        ] {
            fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            fs::write(root.join(file), text).unwrap();
        }
        // A link inside the data that leads to the database.
        std::os::unix::fs::symlink(root.join("backend.db"), data.join("_/p/d/r/link")).unwrap();
        let uri = |rel: &str| format!("file://{}", root.join(rel).display());
        let list = Literal {
            value: Some(literal::Value::Collection(LiteralCollection {
                literals: vec![
                    blob(&uri("data/x/a.csv")),
                    blob(&uri("data/_/p/d/r/a.csv")),
                    blob("s3://bucket/b"),
                ],
            })),
            ..Default::default()
        };
        let dataclass = msgpack(rmpv::Value::Map(vec![(
            "path".into(),
            root.join("data/uploads/p/d/x/f.txt")
                .display()
                .to_string()
                .into(),
        )]));
        let outside = blob("file:///elsewhere/c");
        let sneaky = blob(&uri("data/../backend.db"));
        let database = blob(&uri("backend.db"));
        let linked = blob(&uri("data/_/p/d/r/link"));
        // A whole project: too shallow.
        let project = blob(&uri("data/_/p"));
        let missing = blob(&uri("data/_/p/d/r/missing"));
        let found = literal_paths(
            &[data],
            [
                &list, &dataclass, &outside, &sneaky, &database, &linked, &project, &missing,
            ],
        );
        assert_eq!(
            found,
            vec![
                root.join("data/_/p/d/r/a.csv"),
                root.join("data/uploads/p/d/x/f.txt")
            ]
        );
    }

    #[test]
    fn a_cache_hit_is_brought_into_the_run_that_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = &dir.path().canonicalize().unwrap();
        let other = root.join("data/_/p/d/other");
        let own = root.join("data/_/p/d/own");
        fs::create_dir_all(other.join("raw/a1/0/dir")).unwrap();
        fs::create_dir_all(other.join("a1/0")).unwrap();
        fs::write(other.join("raw/a1/0/f.txt"), b"file").unwrap();
        fs::write(other.join("raw/a1/0/dir/g.txt"), b"in a dir").unwrap();
        let file = format!("file://{}", other.join("raw/a1/0/f.txt").display());
        let tree = format!("file://{}/", other.join("raw/a1/0/dir").display());
        let outputs = Outputs {
            literals: vec![
                NamedLiteral {
                    name: "o0".into(),
                    value: Some(blob(&file)),
                },
                NamedLiteral {
                    name: "o1".into(),
                    value: Some(msgpack(rmpv::Value::Map(vec![(
                        "path".into(),
                        tree.as_str().into(),
                    )]))),
                },
            ],
            ..Default::default()
        };
        fs::write(other.join("a1/0/outputs.pb"), outputs.encode_to_vec()).unwrap();
        let source = format!("file://{}/", other.join("a1/0").display());
        let target = own.join("a7/cache");
        let refs = root.join("refs/_/p/d/own");
        let shareable = [root.join("data"), root.join("refs")];
        let dirs = RunDirs {
            own: &own,
            refs: &refs,
            shareable: &shareable,
        };
        let uri = bring_outputs(root, &dirs, &source, &target).unwrap();
        assert_eq!(uri, dir_uri(&target));
        let brought =
            Outputs::decode(fs::read(target.join("outputs.pb")).unwrap().as_slice()).unwrap();
        let found = literal_paths(
            &shareable,
            brought.literals.iter().filter_map(|l| l.value.as_ref()),
        );
        assert_eq!(found.len(), 2, "{found:?}");
        for path in &found {
            assert!(path.starts_with(&refs), "{path:?}");
        }
        assert_eq!(fs::read(&found[0]).unwrap(), b"file");
        assert_eq!(fs::read(found[1].join("g.txt")).unwrap(), b"in a dir");
        // The source is unchanged.
        assert_eq!(
            fs::read(other.join("a1/0/outputs.pb")).unwrap(),
            outputs.encode_to_vec()
        );
    }
}
