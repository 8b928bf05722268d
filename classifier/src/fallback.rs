//! The token-level scan, for files the parser cannot read (Python 3.12+ syntax such as
//! `f"{"x"}"`, syntax errors, nesting over the limit, invalid UTF-8).
//!
//! It works on the tokens of [`super::lexer`], so strings and comments still never count. It
//! finds imports, the device calls of [`super::devices`] in their literal forms (`.cuda()`,
//! `.to("cuda")`, `device="cuda"`, `torch.device("cuda")`, `tf.device("/GPU:0")`,
//! `torch.cuda.*()`), `from_pretrained("...")` with a size in the name, and `.backward()`. A use is
//! guarded when its line is a conditional expression testing a GPU switch, or when it sits in a
//! block opened by `if`/`elif`/`while` testing one, or by `try`.

use super::imports::library_kind;
use super::lexer::{Kind, Token};
use super::rules::{self, DeviceString};
use gaia_contract::{Finding, FindingKind};

/// One import statement read from tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenImport {
    /// Leading dots of a relative import.
    pub level: u32,
    /// The dotted module (`import a.b` or `from a.b import c`; may be empty for `from . import x`).
    pub module: String,
    /// For `from ... import a, b`: the imported names.
    pub names: Vec<String>,
    /// `from` form.
    pub from: bool,
    pub line: u32,
    /// Index of the `import`/`from` token.
    pub token: usize,
}

fn starts_statement(src: &str, tokens: &[Token], i: usize) -> bool {
    match i.checked_sub(1).and_then(|p| tokens.get(p)) {
        None => true,
        Some(p) => match p.kind {
            Kind::Newline | Kind::Indent | Kind::Dedent => true,
            Kind::Op => matches!(p.text(src), ";" | ":"),
            _ => false,
        },
    }
}

fn dotted(src: &str, tokens: &[Token], i: &mut usize) -> String {
    let mut out = String::new();
    while let Some(t) = tokens.get(*i) {
        if t.kind == Kind::Name
            && (out.is_empty() || out.ends_with('.'))
            && !matches!(t.text(src), "import" | "as")
        {
            out.push_str(t.text(src));
        } else if t.is_op(src, ".") && !out.is_empty() && !out.ends_with('.') {
            out.push('.');
        } else {
            break;
        }
        *i += 1;
    }
    out.trim_end_matches('.').to_owned()
}

/// The import statements of a file, from its tokens.
pub fn token_imports(src: &str, tokens: &[Token]) -> Vec<TokenImport> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(t) = tokens.get(i) {
        if t.kind != Kind::Name || !starts_statement(src, tokens, i) {
            i += 1;
            continue;
        }
        let start = i;
        match t.text(src) {
            "import" => {
                i += 1;
                loop {
                    let module = dotted(src, tokens, &mut i);
                    if module.is_empty() {
                        break;
                    }
                    out.push(TokenImport {
                        level: 0,
                        module,
                        names: Vec::new(),
                        from: false,
                        line: t.line,
                        token: start,
                    });
                    if tokens.get(i).is_some_and(|t| t.is_name(src, "as")) {
                        i += 2;
                    }
                    if tokens.get(i).is_some_and(|t| t.is_op(src, ",")) {
                        i += 1;
                    } else {
                        break;
                    }
                }
            }
            "from" => {
                i += 1;
                let mut level = 0u32;
                while let Some(d) = tokens.get(i) {
                    match (d.kind, d.text(src)) {
                        (Kind::Op, ".") => level += 1,
                        (Kind::Op, "...") => level += 3,
                        _ => break,
                    }
                    i += 1;
                }
                let module = dotted(src, tokens, &mut i);
                if !tokens.get(i).is_some_and(|t| t.is_name(src, "import")) {
                    continue;
                }
                i += 1;
                let mut names = Vec::new();
                while let Some(n) = tokens.get(i) {
                    match n.kind {
                        Kind::Name if n.text(src) == "as" => i += 1,
                        Kind::Name => names.push(n.text(src).to_owned()),
                        Kind::Op if matches!(n.text(src), "(" | ")" | ",") => {}
                        _ => break,
                    }
                    i += 1;
                }
                out.push(TokenImport {
                    level,
                    module,
                    names,
                    from: true,
                    line: t.line,
                    token: start,
                });
            }
            _ => i += 1,
        }
    }
    out
}

fn is_guard_token(src: &str, t: &Token) -> bool {
    match t.kind {
        Kind::Name => {
            let lower = t.text(src).to_ascii_lowercase();
            rules::GUARD_NAME_PARTS.iter().any(|p| lower.contains(p))
                || rules::AVAILABILITY_CHECKS.contains(&t.text(src))
        }
        Kind::Str { .. } => t
            .str_body(src)
            .is_some_and(|s| rules::device_string(s) == DeviceString::Gpu || s == "cpu"),
        _ => false,
    }
}

/// Logical lines: (first token, one past the last token).
fn logical_lines(tokens: &[Token]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t.kind {
            Kind::Newline => {
                if i > start {
                    out.push((start, i));
                }
                start = i + 1;
            }
            Kind::Indent | Kind::Dedent if i == start => start = i + 1,
            _ => {}
        }
    }
    if start < tokens.len() {
        out.push((start, tokens.len()));
    }
    out
}

/// Findings of the token-level scan of one file. `why` says why the parser was not used.
pub fn scan(file: &str, src: &str, tokens: &[Token], why: &str, why_line: u32) -> Vec<Finding> {
    let mut findings = vec![Finding::new(
        FindingKind::ParseFallback,
        file,
        why_line,
        why.to_owned(),
    )];
    let guarded_at = block_guards(src, tokens);
    let seen_libs = imports_into(&mut findings, file, src, tokens, &guarded_at);
    calls_into(
        &mut findings,
        file,
        src,
        tokens,
        &guarded_at,
        !seen_libs.is_empty(),
    );
    findings
}

/// Findings for the imports of a file, from its tokens (exact for valid code).
pub fn import_findings(file: &str, src: &str, tokens: &[Token]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let guarded_at = block_guards(src, tokens);
    imports_into(&mut findings, file, src, tokens, &guarded_at);
    findings
}

/// Adds import findings (guarded inside a `try` block); returns the libraries seen.
fn imports_into(
    findings: &mut Vec<Finding>,
    file: &str,
    src: &str,
    tokens: &[Token],
    guarded_at: &[bool],
) -> Vec<&'static str> {
    let mut seen_libs: Vec<&'static str> = Vec::new();
    for imp in token_imports(src, tokens) {
        let candidates: Vec<String> = if imp.from && imp.level == 0 {
            std::iter::once(imp.module.clone())
                .chain(imp.names.iter().map(|n| format!("{}.{n}", imp.module)))
                .collect()
        } else if imp.level == 0 {
            vec![imp.module.clone()]
        } else {
            Vec::new()
        };
        let mut best: Option<(FindingKind, &'static str, String)> = None;
        for c in &candidates {
            if let Some((kind, lib)) = library_kind(c) {
                if best.as_ref().is_none_or(|b| kind < b.0) {
                    best = Some((kind, lib, c.clone()));
                }
            }
        }
        if let Some((kind, lib, module)) = best {
            if seen_libs.contains(&lib) {
                continue;
            }
            seen_libs.push(lib);
            let guarded = guarded_at.get(imp.token).copied().unwrap_or(false);
            let detail = if kind == FindingKind::CpuLibraryImport {
                lib.to_owned()
            } else {
                module
            };
            findings.push(Finding::new(kind, file, imp.line, detail).guarded(guarded));
        }
    }
    seen_libs
}

/// Adds the findings of the literal call patterns, line by line.
fn calls_into(
    findings: &mut Vec<Finding>,
    file: &str,
    src: &str,
    tokens: &[Token],
    guarded_at: &[bool],
    any_library: bool,
) {
    for (a, b) in logical_lines(tokens) {
        let line_toks = tokens.get(a..b).unwrap_or(&[]);
        let ternary_guard = line_toks.iter().any(|t| t.is_name(src, "if"))
            && line_toks.iter().any(|t| t.is_name(src, "else"))
            && line_toks.iter().any(|t| is_guard_token(src, t));
        for (k, t) in line_toks.iter().enumerate() {
            let i = a + k;
            let guarded = ternary_guard || guarded_at.get(i).copied().unwrap_or(false);
            let next = |n: usize| tokens.get(i + n);
            let text = t.text(src);
            let line = t.line;
            let is_call = |n: usize| next(n).is_some_and(|x| x.is_op(src, "("));
            let str_at = |n: usize| next(n).and_then(|x| x.str_body(src));
            let after_dot = i
                .checked_sub(1)
                .and_then(|p| tokens.get(p))
                .is_some_and(|p| p.is_op(src, "."));
            if t.kind != Kind::Name {
                continue;
            }
            let mut push = |kind: FindingKind, detail: String, guarded: bool| {
                findings.push(Finding::new(kind, file, line, detail).guarded(guarded));
            };
            match text {
                "cuda" if after_dot && is_call(1) => {
                    let prev2 = i.checked_sub(2).and_then(|p| tokens.get(p));
                    if !prev2.is_some_and(|p| p.is_name(src, "torch")) {
                        push(FindingKind::DeviceUse, ".cuda()".into(), guarded);
                    }
                }
                "cuda" if after_dot && next(1).is_some_and(|x| x.is_op(src, ".")) => {
                    let prev2 = i.checked_sub(2).and_then(|p| tokens.get(p));
                    if let (true, Some(f)) = (
                        prev2.is_some_and(|p| p.is_name(src, "torch")),
                        next(2).filter(|x| x.kind == Kind::Name),
                    ) {
                        let f = f.text(src);
                        if is_call(3) {
                            if rules::AVAILABILITY_CHECKS.contains(&f) {
                                push(
                                    FindingKind::AvailabilityCheck,
                                    format!("torch.cuda.{f}()"),
                                    false,
                                );
                            } else if !rules::SAFE_CUDA_FUNCTIONS.contains(&f) {
                                push(FindingKind::CudaCall, format!("torch.cuda.{f}()"), guarded);
                            }
                        }
                    }
                }
                "to" if after_dot && is_call(1) => {
                    if let Some(s) = str_at(2) {
                        if rules::device_string(s) == DeviceString::Gpu {
                            push(FindingKind::DeviceUse, format!(".to(\"{s}\")"), guarded);
                        }
                    }
                }
                "device" if is_call(1) => {
                    if let Some(s) = str_at(2) {
                        if rules::device_string(s) == DeviceString::Gpu {
                            push(FindingKind::DeviceUse, format!("device(\"{s}\")"), guarded);
                        }
                    }
                }
                "device" | "device_map" if next(1).is_some_and(|x| x.is_op(src, "=")) => {
                    if let Some(s) = str_at(2) {
                        match rules::device_string(s) {
                            DeviceString::Gpu => {
                                push(FindingKind::DeviceUse, format!("{text}=\"{s}\""), guarded)
                            }
                            DeviceString::Auto => {
                                push(FindingKind::DeviceUse, format!("{text}=\"{s}\""), true)
                            }
                            DeviceString::Other => {}
                        }
                    }
                }
                "from_pretrained" if is_call(1) => {
                    if let Some(s) = str_at(2) {
                        let size = rules::model_size(s);
                        findings.push(
                            Finding::new(
                                FindingKind::ModelLoad,
                                file,
                                line,
                                format!("from_pretrained: {s} ({})", size.describe()),
                            )
                            .heavy(size.is_heavy()),
                        );
                    }
                }
                "backward" if after_dot && is_call(1) && any_library => {
                    push(FindingKind::Training, ".backward()".into(), false);
                }
                "assert" if line_toks.iter().any(|x| x.is_name(src, "is_available")) => {
                    push(
                        FindingKind::GpuRequired,
                        "assert ...is_available()".into(),
                        false,
                    );
                }
                _ => {}
            }
        }
    }
}

/// For each token: is it inside a block opened by a device-guard `if`/`elif`/`while`, or by
/// `try`?
fn block_guards(src: &str, tokens: &[Token]) -> Vec<bool> {
    let mut out = vec![false; tokens.len()];
    let mut stack: Vec<bool> = Vec::new();
    let mut header_guard = false;
    let mut line_start = true;
    let mut current_header: Option<bool> = None;
    for (i, t) in tokens.iter().enumerate() {
        match t.kind {
            Kind::Indent => {
                let outer = stack.last().copied().unwrap_or(false);
                stack.push(outer || header_guard);
                line_start = true;
                continue;
            }
            Kind::Dedent => {
                stack.pop();
                line_start = true;
                continue;
            }
            Kind::Newline => {
                header_guard = current_header.unwrap_or(false);
                current_header = None;
                line_start = true;
                continue;
            }
            _ => {}
        }
        if line_start {
            line_start = false;
            current_header = match t.text(src) {
                "try" if t.kind == Kind::Name => Some(true),
                "if" | "elif" | "while" if t.kind == Kind::Name => Some(false),
                _ => None,
            };
        }
        if let Some(h) = current_header.as_mut() {
            if is_guard_token(src, t) {
                *h = true;
            }
        }
        if let Some(slot) = out.get_mut(i) {
            *slot = stack.last().copied().unwrap_or(false);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;

    #[test]
    fn imports_are_read_from_tokens() {
        let src = "import os, torch.nn as nn\nfrom . import model\nfrom ..pkg.mod import (a,\n b as c)\nx = 'import cupy'\n";
        let lexed = lex(src);
        let imps = token_imports(src, &lexed.tokens);
        let got: Vec<(u32, &str, Vec<String>)> = imps
            .iter()
            .map(|i| (i.level, i.module.as_str(), i.names.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "os", vec![]),
                (0, "torch.nn", vec![]),
                (1, "", vec!["model".to_owned()]),
                (2, "pkg.mod", vec!["a".to_owned(), "b".to_owned()]),
            ]
        );
    }
}
