//! Gaia's classifier, the core of the Execution Mode Identifier: reads a function's Python source and decides how it should run
//! (`cpu`, `cpu_preferred`, `gpu_preferred`, `gpu`), with a one-line rationale and the findings
//! behind it.
//!
//! Pipeline, per file: [`lexer`] (one pass; strings and comments recognised), [`limits`] (nesting
//! bound, before any parsing), then `ruff_python_parser` and the walk over the tree ([`walk`], with
//! [`imports`], [`devices`], [`intensity`], [`values`]); a file the parser cannot read is scanned
//! at the token level ([`fallback`]). Multi-file functions follow the entry's imports of local
//! modules ([`project`]). [`rules`] holds every table and threshold, and how findings combine into
//! a mode.
//!
//! [`classify`] is synchronous and pure. It recurses over syntax trees whose depth
//! [`Limits::max_nesting`] bounds: call it on a thread with at least
//! [`Limits::required_stack_bytes`] of stack ([`REQUIRED_STACK_BYTES`] for the default limits).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod carry;
mod classification;
mod commands;
mod devices;
mod dtype;
mod error;
mod fallback;
mod files;
mod imports;
mod intensity;
mod lexer;
mod limits;
mod project;
pub mod rules;
mod source;
mod symbols;
mod values;
mod walk;

use std::borrow::Cow;

use ruff_python_ast::Suite;

pub use classification::{Classification, GpuMemory};
pub use gaia_contract::{Finding, FindingKind};
pub use limits::{required_stack_bytes, Limits};

pub use error::Error;
pub use files::classify_path;

/// Stack the thread calling [`classify`] with `Limits::default()` must have (see
/// [`Limits::required_stack_bytes`] for other limits).
pub const REQUIRED_STACK_BYTES: usize = limits::required_stack_bytes(limits::DEFAULT_MAX_NESTING);

/// One file of a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the function root, e.g. `func.py`, `pkg/model.py`.
    pub path: String,
    pub bytes: Vec<u8>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> SourceFile {
        SourceFile {
            path: path.into(),
            bytes: bytes.into(),
        }
    }
}

/// Identifiers that make a file worth parsing on its own: GPU-capable and GPU-only library
/// names, `from_pretrained`, `pipeline`, and names containing "cuda", "gpu" or "device". (CPU
/// libraries alone do not: their imports are read from the tokens.)
fn is_relevant_name(name: &str) -> bool {
    static ROOTS: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        rules::GPU_CAPABLE_FRAMEWORKS
            .iter()
            .chain(rules::GPU_ONLY_LIBRARIES)
            .filter_map(|e| e.split('.').next())
            .chain(["from_pretrained", "pipeline"])
            .collect()
    });
    mentions_gpu(name, true) || roots.contains(name)
}

/// Does `s` contain "cuda" or "gpu" (or, with `device`, "device"; without it, as in strings,
/// "nvenc" or "nvidia" of command lines), in any case? One pass.
fn mentions_gpu(s: &str, device: bool) -> bool {
    let b = s.as_bytes();
    let at = |i: usize, word: &[u8]| {
        b.get(i..i + word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    (0..b.len()).any(|i| match b.get(i).map(|c| c | 0x20) {
        Some(b'c') => at(i, b"cuda"),
        Some(b'g') => at(i, b"gpu"),
        Some(b'd') => device && at(i, b"device"),
        Some(b'n') => {
            !device
                && b.get(i + 1).is_some_and(|c| c | 0x20 == b'v')
                && (at(i, b"nvenc") || at(i, b"nvidia"))
        }
        _ => false,
    })
}

/// A digit followed by b/B/m/M: the only strings [`rules::params_from_name`] can read a size from.
fn may_name_a_size(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| matches!(w, [d, b'b' | b'B' | b'm' | b'M'] if d.is_ascii_digit()))
}

/// Does a file contain anything the analysis could report? (Only identifiers and short strings
/// are looked at, never comments or docstrings.) A single file without any is `cpu` without being
/// parsed.
fn is_relevant(src: &str, tokens: &[lexer::Token]) -> bool {
    tokens.iter().any(|t| match t.kind {
        lexer::Kind::Name => is_relevant_name(t.text(src)),
        lexer::Kind::Str { .. } => {
            t.end - t.start <= 200
                && t.str_body(src).is_some_and(|s| {
                    mentions_gpu(s, false)
                        || (may_name_a_size(s) && rules::params_from_name(s).is_some())
                })
        }
        _ => false,
    })
}

/// Does a file define a function or method a serving framework calls (`def handle`, `def
/// predict`, `def initialize`, ...)? From the tokens.
fn defines_entry_function(src: &str, tokens: &[lexer::Token]) -> bool {
    tokens.windows(2).any(|w| match w {
        [d, n] => {
            d.is_name(src, "def")
                && n.kind == lexer::Kind::Name
                && project::ENTRY_FUNCTIONS.contains(&n.text(src))
        }
        _ => false,
    })
}

/// Python's universal newlines, and no byte order mark: what the parser and the offsets see.
fn normalise_source(text: Cow<'_, str>) -> Cow<'_, str> {
    let text = match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_prefix('\u{feff}').unwrap_or(s)),
        Cow::Owned(s) => match s.strip_prefix('\u{feff}') {
            Some(rest) => Cow::Owned(rest.to_owned()),
            None => Cow::Owned(s),
        },
    };
    if !text.contains('\r') {
        return text;
    }
    Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}

enum Plan {
    /// Not reached from the entry module.
    Unreached,
    /// Nothing relevant: not parsed.
    Skip,
    Parsed(Suite),
    Fallback {
        why: String,
        line: u32,
    },
}

fn parse(src: &str) -> Result<Suite, (String, u32)> {
    // The parser is third-party code: should it ever panic on some input, that file goes to the
    // token-level scan instead of taking the caller's thread down.
    let result = std::panic::catch_unwind(|| ruff_python_parser::parse_module(src))
        .map_err(|_| ("the parser failed on this input".to_owned(), 0u32))?;
    match result {
        Ok(parsed) => Ok(parsed.into_syntax().body),
        Err(e) => Err((e.error.to_string(), e.location.start().to_u32())),
    }
}

/// Offsets are 32-bit (as in the parser): no file may be larger than this, whatever the limits.
const HARD_MAX_FILE_BYTES: usize = (u32::MAX / 2) as usize;

fn check_limits(files: &[SourceFile], limits: &Limits) -> Result<(), Error> {
    if files.len() > limits.max_files {
        return Err(Error::TooManyFiles {
            count: files.len(),
            limit: limits.max_files,
        });
    }
    let mut total = 0usize;
    for f in files {
        let limit = limits.max_file_bytes.min(HARD_MAX_FILE_BYTES);
        if f.bytes.len() > limit {
            return Err(Error::InputTooLarge {
                what: f.path.clone(),
                size: f.bytes.len(),
                limit,
            });
        }
        total = total.saturating_add(f.bytes.len());
    }
    if total > limits.max_total_bytes {
        return Err(Error::InputTooLarge {
            what: "the function's files together".to_owned(),
            size: total,
            limit: limits.max_total_bytes,
        });
    }
    Ok(())
}

/// Classifies a function given as its files. Pure and synchronous; never panics. Errors only for
/// input over the [`Limits`]. See the module documentation for the stack it needs.
pub fn classify(files: &[SourceFile], limits: &Limits) -> Result<Classification, Error> {
    check_limits(files, limits)?;
    let paths: Vec<String> = files
        .iter()
        .map(|f| project::normalise_path(&f.path))
        .collect();
    let texts: Vec<(Cow<'_, str>, bool)> = files
        .iter()
        .map(|f| match String::from_utf8_lossy(&f.bytes) {
            Cow::Borrowed(s) => (normalise_source(Cow::Borrowed(s)), false),
            Cow::Owned(s) => (normalise_source(Cow::Owned(s)), true),
        })
        .collect();
    let lexed: Vec<lexer::Lexed> = texts.iter().map(|(t, _)| lexer::lex(t)).collect();
    // Only a project of several files needs the import graph.
    let token_imports: Vec<Vec<fallback::TokenImport>> = if files.len() > 1 {
        texts
            .iter()
            .zip(&lexed)
            .map(|((t, _), l)| fallback::token_imports(t, &l.tokens))
            .collect()
    } else {
        Vec::new()
    };
    let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let mut layout = project::Layout::new(&path_refs);
    layout.choose_entry(&path_refs, &token_imports, |i| {
        let (Some((text, _)), Some(lx)) = (texts.get(i), lexed.get(i)) else {
            return false;
        };
        defines_entry_function(text, &lx.tokens)
    });
    let reached = layout.reachable(&token_imports);
    let single = files.len() == 1;

    let mut plans: Vec<Plan> = Vec::with_capacity(files.len());
    for (i, ((text, lossy), lx)) in texts.iter().zip(&lexed).enumerate() {
        let plan = if !reached.get(i).copied().unwrap_or(true) {
            Plan::Unreached
        } else if *lossy {
            Plan::Fallback {
                why: "not valid UTF-8".to_owned(),
                line: 1,
            }
        } else if single && !is_relevant(text, &lx.tokens) {
            Plan::Skip
        } else {
            let (depth, line) = limits::nesting_bound(text, &lx.tokens);
            if depth > limits.max_nesting {
                Plan::Fallback {
                    why: format!(
                        "nesting bound {depth} over the limit of {}",
                        limits.max_nesting
                    ),
                    line,
                }
            } else {
                match parse(text) {
                    Ok(suite) => Plan::Parsed(suite),
                    Err((why, offset)) => Plan::Fallback {
                        why: match lx.problem {
                            Some((l, p)) => format!(
                                "parser: {} (tokenizer: {p} at line {l})",
                                source::shorten(&why)
                            ),
                            None => format!("parser: {}", source::shorten(&why)),
                        },
                        line: source::LineIndex::new(text).line(offset),
                    },
                }
            }
        };
        plans.push(plan);
    }

    let modules: Vec<Option<values::ModuleCtx<'_>>> = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let Plan::Parsed(suite) = plan else {
                return None;
            };
            let src: &str = texts.get(i).map_or("", |(t, _)| t);
            let lines = source::LineIndex::new(src);
            let module = layout.modules.get(i).map_or("", String::as_str);
            let is_pkg = layout.is_package.get(i).copied().unwrap_or(false);
            let syms = symbols::collect(suite, &lines, module, is_pkg, &layout);
            Some(values::ModuleCtx {
                file: paths.get(i).map_or("", String::as_str),
                suite,
                src,
                lines,
                syms,
            })
        })
        .collect();
    // `.to("cuda")` is device use only where something GPU-capable is imported (a file read by
    // the token-level scan may import one: counted as yes).
    let gpu_capable = plans.iter().any(|p| matches!(p, Plan::Fallback { .. }))
        || modules.iter().flatten().any(|m| {
            m.syms.imports.imports.iter().any(|imp| {
                matches!(imp.target, imports::Target::External(_))
                    && imports::library_kind(&imp.module)
                        .is_some_and(|(k, _)| k != FindingKind::CpuLibraryImport)
            })
        });
    let eval = values::Eval {
        modules: &modules,
        gpu_capable,
        steps_left: Default::default(),
    };

    let mut per_file: Vec<Vec<Finding>> = vec![Vec::new(); files.len()];
    let mut fallback_files: Vec<String> = Vec::new();
    let mut walked: Vec<(usize, walk::Analysis<'_>)> = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let path = paths.get(i).map_or("", String::as_str);
        let src: &str = texts.get(i).map_or("", |(t, _)| t);
        let tokens = lexed.get(i).map_or(&[][..], |l| l.tokens.as_slice());
        let Some(findings) = per_file.get_mut(i) else {
            continue;
        };
        match plan {
            Plan::Parsed(_) => walked.push((i, walk::analyze(&eval, i))),
            Plan::Fallback { why, line } => {
                fallback_files.push(path.to_owned());
                findings.extend(fallback::scan(path, src, tokens, why, *line));
            }
            Plan::Unreached => {
                if is_relevant(src, tokens) {
                    let entry = layout
                        .entry
                        .and_then(|e| paths.get(e))
                        .map_or("the entry", String::as_str);
                    findings.push(Finding::new(
                        FindingKind::IgnoredFile,
                        path,
                        1,
                        format!("not imported by {entry}: not counted"),
                    ));
                }
            }
            // Nothing GPU-related: its imports (CPU libraries, for the rationale) come from the
            // tokens, which are exact for imports.
            Plan::Skip => findings.extend(fallback::import_findings(path, src, tokens)),
        }
    }
    // GPU use in functions referred to only under device guards (or in modules imported only
    // there) has a CPU path.
    let runs_model = walked.iter().any(|(_, a)| a.runs_model);
    let model_params = walked
        .iter()
        .filter_map(|(_, a)| a.model_params)
        .reduce(f64::max);
    for (i, f) in carry::carry_guards(&eval, layout.entry, walked) {
        if let Some(slot) = per_file.get_mut(i) {
            *slot = f;
        }
    }
    let findings: Vec<Finding> = per_file.into_iter().flatten().collect();
    let counted: Vec<Finding> = findings
        .iter()
        .filter(|f| f.kind != FindingKind::IgnoredFile)
        .cloned()
        .collect();
    let entry = layout
        .entry
        .filter(|_| files.len() > 1)
        .and_then(|e| paths.get(e))
        .map(String::as_str);
    let (mode, mut rationale) = rules::decide(&counted, &fallback_files, entry, runs_model);
    let gpu_memory = model_params.map(|params| {
        let found = dtype::narrowest(plans.iter().enumerate().flat_map(|(i, plan)| {
            let counted = matches!(plan, Plan::Parsed(_) | Plan::Fallback { .. });
            let (path, src) = (
                paths.get(i).map_or("", String::as_str),
                texts.get(i).map_or("", |(t, _)| t),
            );
            let tokens = lexed.get(i).map_or(&[][..], |l| l.tokens.as_slice());
            if counted {
                dtype::scan(path, src, tokens)
            } else {
                Vec::new()
            }
        }));
        GpuMemory::new(
            params,
            found.map(|h| (h.dtype, format!("{}:{} {}", h.file, h.line, h.what))),
        )
    });
    // The estimate goes at the end of the rationale when it fits whole, else in short (or
    // shortest), else not (it is in `gpu_memory` either way): the rule's own reason is never cut for it.
    if let Some(g) = gpu_memory
        .as_ref()
        .filter(|_| mode != gaia_contract::ExecutionMode::Cpu)
    {
        let max = gaia_contract::verdict::MAX_CLASSIFIER_RATIONALE_CHARS;
        let used = rationale.chars().count();
        if let Some(tail) = [g.describe(), g.describe_short(), g.describe_tiny()]
            .into_iter()
            .find(|t| used + 2 + t.chars().count() <= max)
        {
            rationale = format!("{rationale}; {tail}");
        }
    }
    Ok(Classification {
        mode,
        rationale,
        findings,
        fallback: !fallback_files.is_empty(),
        gpu_memory,
    })
}

/// Hooks for the crate's integration tests and benchmark; not a stable API.
#[doc(hidden)]
pub mod testing {
    use ruff_python_ast::token::TokenKind;
    use ruff_text_size::Ranged;

    use super::lexer::Kind;

    /// Where our tokenizer claims its tokens are exact, compares them with the tokens of
    /// `ruff_python_parser`'s lexer, the one the parser reads: the same names (keywords
    /// included), numbers, strings (an f-string or t-string as one token, from its start to its
    /// end), operators and newlines at the same offsets, and the same indents and dedents.
    /// Comments and newlines inside brackets are not tokens of ours. `None`: equal (or not
    /// claimed exact); `Some(why)`: they differ.
    pub fn token_mismatch(src: &str) -> Option<String> {
        let lexed = super::lexer::lex(src);
        if !lexed.exact {
            return None;
        }
        let ours: Vec<(&'static str, u32, u32)> = lexed
            .tokens
            .iter()
            .map(|t| match t.kind {
                Kind::Name => ("name", t.start, t.end),
                Kind::Number => ("number", t.start, t.end),
                Kind::Str { .. } => ("string", t.start, t.end),
                Kind::Op => ("op", t.start, t.end),
                Kind::Newline => ("newline", t.start, t.end),
                Kind::Indent => ("indent", 0, 0),
                Kind::Dedent => ("dedent", 0, 0),
            })
            .collect();
        let parsed =
            ruff_python_parser::parse_unchecked_source(src, ruff_python_ast::PySourceType::Python);
        let mut theirs: Vec<(&'static str, u32, u32)> = Vec::new();
        let (mut depth, mut start) = (0u32, 0u32);
        for t in parsed.tokens().iter() {
            let (s, e) = (t.start().to_u32(), t.end().to_u32());
            let kind = t.kind();
            match kind {
                TokenKind::FStringStart | TokenKind::TStringStart => {
                    if depth == 0 {
                        start = s;
                    }
                    depth += 1;
                    continue;
                }
                TokenKind::FStringEnd | TokenKind::TStringEnd => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        theirs.push(("string", start, e));
                    }
                    continue;
                }
                _ if depth > 0 => continue,
                TokenKind::Comment | TokenKind::NonLogicalNewline | TokenKind::EndOfFile => {
                    continue
                }
                _ => {}
            }
            theirs.push(match kind {
                TokenKind::Name => ("name", s, e),
                k if k.is_keyword() || k.is_soft_keyword() => ("name", s, e),
                TokenKind::Int | TokenKind::Float | TokenKind::Complex => ("number", s, e),
                TokenKind::String => ("string", s, e),
                TokenKind::Newline => ("newline", s, e),
                TokenKind::Indent => ("indent", 0, 0),
                TokenKind::Dedent => ("dedent", 0, 0),
                k if k.is_operator() => ("op", s, e),
                _ => ("other", s, e),
            });
        }
        if let Some(i) = (0..ours.len().max(theirs.len())).find(|&i| ours.get(i) != theirs.get(i)) {
            return Some(format!(
                "token {i}: ours {:?}, ruff {:?} ({} tokens, ruff {})",
                ours.get(i),
                theirs.get(i),
                ours.len(),
                theirs.len()
            ));
        }
        None
    }

    /// Parses as `classify` does; `true` when it parsed.
    pub fn parse_fast(src: &str) -> bool {
        super::parse(src).is_ok()
    }

    /// The nesting bound of a source (see `limits`).
    pub fn nesting_bound(src: &str) -> usize {
        super::limits::nesting_bound(src, &super::lexer::lex(src).tokens).0
    }
}
